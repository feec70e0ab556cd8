"""Shared fixtures: the real offline base model, a real (untrained) adapter saved on it, a tiny causal LM with a trained
adapter, MLflow stores, and the Dagster layer's settings in a temp dir, resources, customisation objects and a
temporary instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from modelops_tests.helpers import LABELS, build_smaller_base, build_tiny_causal_lm  # noqa: E402 (after the offline switches)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In pytest-xdist workers (`make test`), the unit-test files of core/ go last, longest-work-first scheduling: the
    end-to-end files (minutes each) start early, and the many short unit files fill both workers' last minutes instead
    of one worker finishing a long file alone. Every worker sorts the same way, as xdist requires; the order within
    each group is kept."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.nodeid.startswith("modelops_tests/core/"))


@pytest.fixture(scope="session")
def base_info():
    """The shipped all-MiniLM-L6-v2 base (real weights, offline)."""
    from modelops.core.training.base_model import describe_base_model
    from modelops.settings import default_base_model_path

    return describe_base_model(default_base_model_path())


@pytest.fixture(scope="session")
def untrained_adapter_dir(base_info, tmp_path_factory) -> Path:
    """A real LoRA adapter + head on the real base, saved exactly as training saves it, without training."""
    from peft import LoraConfig, get_peft_model

    from modelops.core.training.base_model import load_base_model
    from modelops.core.training.train import save_adapter, seed_everything
    from modelops.core.training.training_config import TrainingConfig

    seed_everything(0)
    model = get_peft_model(load_base_model(base_info, num_labels=len(LABELS)),
                           LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"]))
    out = tmp_path_factory.mktemp("adapter") / "untrained"
    save_adapter(model, out, LABELS, base_info, TrainingConfig(), {"temperature": 1.0})
    return out


@pytest.fixture(scope="session")
def smaller_base_dir(base_info, tmp_path_factory) -> Path:
    return build_smaller_base(base_info.path, tmp_path_factory.mktemp("bases") / "minilm-l4", layers=4)


@pytest.fixture(scope="session")
def trained_extractor(tmp_path_factory) -> dict:
    """A tiny causal LM (helpers.build_tiny_causal_lm) and an adapter trained on the built-in ticket -> JSON task:
    {"base": BaseModelInfo, "split": {train, validation, test: curated rows}, "result": TrainingResult}."""
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import curate_instructions, extraction_tasks
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.causal_lm import train_causal_lm_adapter
    from modelops.core.training.training_config import TrainingConfig

    curated, _ = curate_instructions(extraction_tasks(generate_corpus(400, seed=0)).assign(source="generator"))
    folder = tmp_path_factory.mktemp("tiny-llama")
    base = describe_base_model(build_tiny_causal_lm(folder, (curated["prompt"] + curated["response"]).tolist()),
                               "causal-lm")
    split = {name: curated[curated["split"] == name] for name in ("train", "validation", "test")}
    config = TrainingConfig.model_validate({
        "epochs": 6, "batch_size": 16, "learning_rate": 0.02, "max_length": 128, "early_stopping_patience": 3,
        "lora": {"r": 16, "alpha": 32,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}})
    result = train_causal_lm_adapter(split["train"], split["validation"], base, config, folder / "adapter")
    return {"base": base, "split": split, "result": result}


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory) -> Path:
    """An initialised, empty MLflow SQLite store; copying it skips the schema migrations (seconds per test)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def fresh_mlflow_db(mlflow_template_db: Path):
    """Copy the template store to `target` and return its tracking URI."""
    import shutil

    def make(target: Path) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mlflow_template_db, target)
        return f"sqlite:///{target}"

    return make


@pytest.fixture()
def settings(tmp_path: Path):
    from modelops.settings import Settings

    return Settings(home=tmp_path / "home", data_dir=tmp_path / "data")


@pytest.fixture()
def resources(settings) -> dict:
    from modelops.defs.resources import resources_from_settings

    return resources_from_settings(settings)


@pytest.fixture()
def customisation(settings):
    """The assets, checks, jobs and sensor of the settings' (only) customisation."""
    from modelops.defs.customisation import customisation_defs

    return customisation_defs(settings.customisation)


@pytest.fixture()
def instance():
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance
