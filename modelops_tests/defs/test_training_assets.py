"""The training path on real MiniLM + real MLflow: first champion, sabotaged challenger refused, clear failures.

One customisation (the default `support_router`); test_migrate_customisations.py migrates two at once.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import torch
import yaml

from modelops.core.data.curate import content_hash
from modelops.core.evaluation.abstention import ServedAbstention
from modelops.core.monitoring.traffic import list_batches, read_batches
from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter
from modelops.core.registry.registry import ModelRegistry
from modelops.core.training.train import read_label_names, uses_bf16
from modelops.defs.customisation import CustomisationDefs, customisation_defs
from modelops.settings import PACKAGE_CONFIG_DIR, Settings
from modelops_tests.helpers import override

PERMISSIVE_GATE = """
gate:
  min_eval_size: 50
  min_macro_f1: 0.0
  min_accuracy: 0.0
  min_class_f1: 0.0
  macro_f1_tolerance: 1.0
  max_cost_increase: 100000.0
  max_class_f1_drop: 1.0
"""


def _registry(settings) -> ModelRegistry:
    return ModelRegistry(settings.tracking_uri, settings.registered_model_name)


def _permissive_evaluation(path: Path) -> Path:
    """The owner's cost model with a gate that lets anything pass."""
    policy = yaml.safe_load((PACKAGE_CONFIG_DIR / "evaluation.yaml").read_text())
    policy["gate"] = yaml.safe_load(PERMISSIVE_GATE)["gate"]
    path.write_text(yaml.safe_dump(policy))
    return path


def _node(c: CustomisationDefs, asset: str) -> str:
    return f"{c.keys.name}__{asset}"


def _new_intent_in_feedback(settings: Settings, rows: int) -> None:
    """Captured requests of an intent nobody trained on, labelled through data/feedback/: too few to train on."""
    texts = [f"my esim profile {i} will not activate abroad" for i in range(rows)]
    writer = TrafficWriter(settings.production_dir, max_rows=rows + 1)
    writer.append([TrafficRecord(uuid.uuid4().hex, datetime.now(UTC), text, "technical_issue", 0.4, "m", "0", 1.0,
                                 [0.1] * 32) for text in texts])
    writer.close()
    frame = read_batches(settings.production_dir, list_batches(settings.production_dir))
    settings.feedback_dir.mkdir(parents=True)
    frame.assign(label="esim_activation")[["id", "label"]].to_csv(settings.feedback_dir / "esim.csv", index=False)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """raw -> curated -> adapter -> evaluation -> champion v1 on generated data, shared by the tests in order."""
    from modelops.defs.resources import resources_from_settings

    root = tmp_path_factory.mktemp("loop")
    settings = Settings(home=root / "home", data_dir=root / "data")
    _new_intent_in_feedback(settings, rows=4)
    resources = resources_from_settings(settings)
    c = customisation_defs(settings.customisation)
    config = c.keys.run_config(raw_examples={"generator_rows": 1000}, lora_adapter={"epochs": 2})
    with dg.instance_for_test() as instance:
        result = dg.materialize([c.raw_examples, c.curated_training_set, *c.data_checks, *c.training_assets],
                                resources=resources, instance=instance, run_config=config)
        assert result.success
        yield result, settings, resources, instance


@pytest.fixture()
def bootstrapped(loop):
    return loop[0]


@pytest.fixture()
def settings(loop):
    return loop[1]


@pytest.fixture()
def resources(loop):
    return loop[2]


@pytest.fixture()
def instance(loop):
    return loop[3]


@pytest.fixture()
def c(settings) -> CustomisationDefs:
    return customisation_defs(settings.customisation)


def test_first_model_is_trained_tracked_evaluated_and_promoted(bootstrapped, settings, c):
    registry = _registry(settings)
    assert registry.alias_version("champion") == "1"
    adapter = bootstrapped.asset_materializations_for_node(_node(c, "lora_adapter"))[0].metadata
    assert adapter["best_val_macro_f1"].value > 0.6
    assert adapter["adapter_bytes"].value < 5_000_000  # the adapter only, never a copy of the base
    run = registry.client.get_run(adapter["mlflow_run_id"].value)
    assert run.data.params["data_content_hash"] and run.data.params["base_sha256"]
    assert run.data.tags["modelops.code_version"]
    assert len(registry.client.get_metric_history(run.info.run_id, "val_macro_f1")) >= 2  # step metrics
    artifacts = {a.path for a in registry.client.list_artifacts(run.info.run_id, "adapter")}
    assert {"adapter/adapter_model.safetensors", "adapter/labels.json", "adapter/modelops.json"} <= artifacts
    evaluation = bootstrapped.asset_materializations_for_node(_node(c, "evaluation"))[0].metadata
    assert evaluation["gate_passed"].value and evaluation["champion_version"].value == "None"
    # A new intent with 4 labelled requests waits as pending; everything else trained and was promoted.
    curated = bootstrapped.asset_materializations_for_node(_node(c, "curated_training_set"))[0].metadata
    assert curated["pending_rows"].value == 4 and "| esim_activation |" in curated["pending_labels"].value
    adapter_dir = adapter["adapter_path"].value  # the bootstrap's adapter (later tests train others)
    labels = read_label_names(Path(adapter_dir))
    assert "esim_activation" not in labels and len(labels) == 10
    # The shipped policy prices a fallback: the threshold is chosen, reported and recorded with the version.
    threshold = evaluation["abstention_threshold"].value
    assert 0.0 <= threshold < 1.0 and 0.0 < evaluation["abstention_coverage"].value <= 1.0
    assert evaluation["challenger_cost_per_1000_with_fallback"].value <= evaluation["challenger_cost_per_1000"].value
    assert ServedAbstention.from_tags(registry.version_info("1")["tags"]) == ServedAbstention(threshold,
                                                                                             "human_review")
    assert (settings.state / "reference" / "v1.parquet").is_file()
    # The shipped cost model prices 9 of the generator's 10 labels: the tenth shows where operators look.
    assert evaluation["cost_model_unpriced_labels"].value == ["technical_issue"]
    assert evaluation["cost_model_unknown_labels"].value == []
    report = registry.client.download_artifacts(evaluation["mlflow_run"].value.rsplit("/", 1)[-1],
                                                "evaluation/report.md")
    assert "technical_issue" in Path(report).read_text().split("## Cost model and the data's labels")[1]
    assert "## Abstention (fallback 'human_review' at 0.3 per request" in Path(report).read_text()
    # Promotion calibrated the drift thresholds on the champion's held-out rows and stored them with the version.
    champion = bootstrapped.asset_materializations_for_node(_node(c, "champion"))[0].metadata
    assert champion["drift_false_alarm_rate"].value == 0.01 and "| predicted_label (JS distance) |" in champion[
        "drift_calibration"].value
    assert (settings.state / "reference" / "v1.calibration.json").is_file()
    version_run = registry.version_info("1")["run_id"]
    assert {"drift/calibration.json", "drift/calibration.md"} <= {
        a.path for a in registry.client.list_artifacts(version_run, "drift")}


def test_training_runs_in_its_own_process_and_reports_through_pipes(bootstrapped, settings, instance, c):
    adapter = bootstrapped.asset_materializations_for_node(_node(c, "lora_adapter"))[0].metadata
    assert adapter["training_pid"].value != os.getpid()  # the heavy work ran outside the run worker
    assert adapter["training_processes"].value == 1
    assert adapter["training_precision"].value == ("bf16 autocast" if uses_bf16(torch.device("cpu")) else "fp32")
    run = _registry(settings).client.get_run(adapter["mlflow_run_id"].value)
    # the training process's own summary became the asset's metadata, and matches what it logged to MLflow
    for name in ("best_val_macro_f1", "train_samples_per_second", "steps", "temperature"):
        assert adapter[name].value == pytest.approx(run.data.metrics[name])
    assert "| step |" in adapter["history"].value and "val_macro_f1" in adapter["history"].value
    messages = [entry.user_message for entry in instance.all_logs(bootstrapped.run_id)]
    assert any(m.startswith("step ") and "val macro-F1" in m for m in messages)  # progress streamed to the run's log
    assert not (settings.state / "training" / adapter["mlflow_run_id"].value).exists()  # the process's inputs are gone


def test_a_failing_training_process_fails_the_asset_with_its_reason_and_registers_nothing(
        bootstrapped, resources, instance, settings, c, tmp_path):
    from modelops.defs.resources import Policies

    policy = tmp_path / "training.yaml"
    policy.write_text("epochs: 1\nlora:\n  target_modules: [no_such_layer]\n")
    registry = _registry(settings)
    versions = {v.version for v in registry.client.search_model_versions(f"name='{settings.registered_model_name}'")}
    broken = Policies(**{**resources["policies"].of(c.keys.name).model_dump(), "training_config": str(policy)})
    with pytest.raises(dg.Failure, match="training process failed.*do not match the base model's layers"):
        dg.materialize([c.lora_adapter], resources=override(resources, "policies", c.keys.name, broken),
                       instance=instance)
    failed = registry.client.search_runs([registry.experiment_id], order_by=["attributes.start_time DESC"],
                                         max_results=1)[0]
    assert failed.info.status == "FAILED"
    assert {v.version for v in registry.client.search_model_versions(
        f"name='{settings.registered_model_name}'")} == versions


def test_torchrun_data_parallel_training_reports_once_and_registers_one_adapter(bootstrapped, resources, instance,
                                                                              settings, c):
    from modelops.defs.resources import TrainingLauncher

    result = dg.materialize([c.lora_adapter], resources={**resources, "training": TrainingLauncher(processes=2)},
                            instance=instance, run_config=c.keys.run_config(lora_adapter={"max_steps": 3}))
    adapter = result.asset_materializations_for_node(_node(c, "lora_adapter"))[0].metadata
    assert adapter["training_processes"].value == 2  # two Gloo processes on this CPU, through Pipes
    assert adapter["steps"].value == 3
    version = adapter["model_version"].value
    assert _registry(settings).alias_version("challenger") == version
    run = _registry(settings).client.get_run(adapter["mlflow_run_id"].value)
    assert run.data.params["training_processes"] == "2"
    history = _registry(settings).client.get_metric_history(run.info.run_id, "train_loss")
    assert len({m.step for m in history}) == len(history)  # one process reported each step, not both


def test_incremental_without_new_data_fails_clearly(bootstrapped, resources, instance, c):
    with pytest.raises(dg.Failure, match="no examples the champion has not seen"):
        dg.materialize([c.lora_adapter], resources=resources, instance=instance,
                       run_config=c.keys.run_config(lora_adapter={"mode": "incremental", "max_steps": 2}))


def test_unknown_base_model_path_fails_early(resources, instance, c, tmp_path):
    from modelops.defs.resources import BaseModel

    with pytest.raises(dg.Failure, match="does not exist"):
        dg.materialize([c.lora_adapter], resources={**resources, "base_model": BaseModel(path=str(tmp_path / "nope"))},
                       instance=instance)


def test_sabotaged_challenger_is_refused_and_champion_stays(bootstrapped, resources, instance, settings, c):
    record_path = settings.state / "records" / "curated_training_set.json"
    record = json.loads(record_path.read_text())
    curated = pd.read_parquet(record["path"])
    train = curated["split"] == "train"
    curated.loc[train, "label"] = curated.loc[train, "label"].sample(frac=1.0, random_state=0).to_numpy()
    poisoned = settings.curated_dir / "poisoned.parquet"
    curated.to_parquet(poisoned, index=False)
    record_path.write_text(json.dumps({**record, "path": str(poisoned)}))
    with pytest.raises(dg.Failure, match="changed after curation"):  # a swapped file under the old hash is caught
        dg.materialize([c.lora_adapter], resources=resources, instance=instance)
    record_path.write_text(json.dumps({**record, "path": str(poisoned), "content_hash": content_hash(curated)}))

    latest = max(int(v.version) for v in _registry(settings).client.search_model_versions(
        f"name='{settings.registered_model_name}'"))
    try:
        result = dg.materialize(c.training_assets, resources=resources, instance=instance, raise_on_error=False,
                                run_config=c.keys.run_config(lora_adapter={"max_steps": 10}))
    finally:
        record_path.write_text(json.dumps(record))  # later tests (migrate, reproduce) train on the real curated set
    assert not result.success
    assert _registry(settings).alias_version("champion") == "1"
    assert _registry(settings).alias_version("challenger") == str(latest + 1)
    assert not result.asset_materializations_for_node(_node(c, "champion"))
    gate = json.loads((settings.state / "records" / "evaluation.json").read_text())
    assert gate["passed"] is False
    assert any("macro-F1" in reason for reason in gate["reasons"])
    # what each evaluated version predicted is kept for its next evaluation; no other version's predictions are
    predictions = settings.home / "evaluations" / "predictions"
    assert sorted(p.name for p in predictions.glob("*.npz")) == sorted(["v1.npz", f"v{latest + 1}.npz"])


@pytest.fixture()
def cli(settings, monkeypatch, tmp_path):
    """`modelops <args>` in this process on the module's installation."""
    from modelops.app.cli import main

    def run(*args: str) -> int:
        monkeypatch.setenv("MODELOPS_HOME", str(settings.home))
        monkeypatch.setenv("MODELOPS_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        return main(list(args))

    return run


def test_reproduce_refuses_when_an_input_no_longer_matches_its_hash(bootstrapped, settings, cli, capsys):
    digest = _registry(settings).version_info("1")["tags"]["data_content_hash"]
    curated = settings.curated_dir / f"{digest}.parquet"
    original = curated.read_bytes()
    try:
        frame = pd.read_parquet(curated)
        frame.loc[0, "label"] = frame.loc[1, "label"] if frame.loc[0, "label"] != frame.loc[1, "label"] else "other"
        frame.to_parquet(curated, index=False)
        assert cli("reproduce", settings.registered_model_name, "1") == 2
        err = capsys.readouterr().err
        assert "The curated set" in err and "no longer matches" in err
        curated.unlink()
        assert cli("reproduce", settings.registered_model_name, "1") == 2
        assert "is gone" in capsys.readouterr().err
    finally:
        curated.write_bytes(original)
    assert cli("reproduce", settings.registered_model_name, "99") == 2
    assert "has no version '99'" in capsys.readouterr().err


def test_lineage_prints_the_chain_and_the_champion_history(bootstrapped, settings, cli, capsys):
    assert cli("lineage", settings.registered_model_name, "1") == 0
    out = capsys.readouterr().out
    digest = _registry(settings).version_info("1")["tags"]["data_content_hash"]
    for expected in ("- trigger: manual", f"- curated set: content hash {digest[:16]}", "- training: full on",
                     "- evaluation: macro-F1", "- gate: passed", "- promote: champion vNone -> v1",
                     "# champion history", "- v1: "):
        assert expected in out, expected


def test_migrate_to_a_smaller_base_trains_compares_reports_and_promotes_per_gate(
        bootstrapped, settings, resources, instance, c, cli, smaller_base_dir, base_info, monkeypatch, tmp_path,
        capsys):
    """The migrated champion runs on another base; the test rolls the champion back at the end, so that the other tests
    of the module find v1 on MiniLM whatever their order."""
    from modelops.core.training.base_model import describe_base_model

    # the owner's cost model with a gate that lets anything pass: this tests the mechanics, not the smaller base's
    # quality (a 4-layer cut of MiniLM learns this task far slower; the default gate refuses it)
    monkeypatch.setenv("MODELOPS_EVALUATION_CONFIG", str(_permissive_evaluation(tmp_path / "evaluation.yaml")))
    registry = _registry(settings)
    old = registry.alias_version("champion")
    small = describe_base_model(smaller_base_dir)
    try:
        new = _migrate_and_check(settings, resources, instance, c, cli, smaller_base_dir, base_info, small, monkeypatch,
                                 tmp_path, capsys)
    finally:
        if registry.alias_version("champion") != old:
            registry.rollback("the test restores the module's champion")
    assert registry.alias_version("champion") == old != new


def _migrate_and_check(settings, resources, instance, c, cli, smaller_base_dir, base_info, small, monkeypatch,
                       tmp_path, capsys) -> str:
    from modelops.app.migrate import run_migration
    from modelops.core.serving.predictor import SharedBases
    from modelops.core.serving.served_model import load_champion

    registry = _registry(settings)
    old = registry.alias_version("champion")

    assert cli("migrate", "--base", str(smaller_base_dir), "--epochs", "1") == 0
    out = capsys.readouterr().out
    new = registry.alias_version("champion")
    assert new != old and registry.version_info(new)["tags"]["base_sha256"] == small.sha256
    assert registry.version_info(new)["tags"]["migrated_from"].startswith(f"v{old} on ")
    for expected in (f"| {settings.customisation} | promoted |", f"# Migration of `{settings.registered_model_name}`",
                     f"| from | {base_info.name} |", f"| to | {small.name} | {small.sha256[:16]} | v{new} |",
                     "| business cost per 1000 |", f"**promoted**: v{new} is champion"):
        assert expected in out, expected
    reports = list((settings.home / "migrations").glob(f"*-to-{small.sha256[:12]}.md"))
    assert len(reports) == 1 and reports[0].read_text() in out
    evaluation = json.loads((settings.state / "records" / "evaluation.json").read_text())
    artifacts = [a.path for a in registry.client.list_artifacts(evaluation["mlflow_run_id"], "migration")]
    assert artifacts == ["migration/report.md"]

    # serving keeps the configured (old) base setting and still loads the new champion on the base it was trained on:
    # as its exported variant, or in PyTorch on a shared copy of that base
    served = load_champion(registry, base_info, tmp_path / "cache")
    assert served.version == new and served.variant.startswith("onnx-")
    on_shared = load_champion(registry, base_info, tmp_path / "cache", SharedBases(base_info)).classifier
    assert on_shared.shared.model.config.num_hidden_layers == 4
    assert served.classifier.predict(["where is my parcel"]).labels == on_shared.predict(["where is my parcel"]).labels
    # warm-starting across bases is refused with the fix; a second migration to the same base has nothing to do
    with pytest.raises(dg.Failure, match="cannot warm-start across bases"):
        dg.materialize([c.lora_adapter], resources=resources, instance=instance,
                       run_config=c.keys.run_config(lora_adapter={"mode": "incremental"}))
    outcomes, report = run_migration(settings, smaller_base_dir)
    assert [(o.customisation, o.status) for o in outcomes] == [(settings.customisation, "skipped")]
    assert "already runs on" in outcomes[0].report and outcomes[0].report in report.read_text()
    assert registry.alias_version("champion") == new

    # the migrated version reproduces on the base it was trained on (a short, cheap run to rebuild)
    assert cli("reproduce", settings.registered_model_name, new) == 2
    assert "The base model no longer matches" in capsys.readouterr().err  # the configured base is still MiniLM
    monkeypatch.setenv("MODELOPS_BASE_MODEL_PATH", str(smaller_base_dir))
    assert cli("reproduce", settings.registered_model_name, new) == 0
    out = capsys.readouterr().out
    assert f"version {new}: **reproduced**" in out and "test macro-F1" in out
    assert registry.version_info(new)["tags"]["reproduced"].startswith("matched within 0.005")
    monkeypatch.delenv("MODELOPS_BASE_MODEL_PATH")
    return new



def test_evaluation_imports_are_prefetched_in_a_joinable_thread():
    """lora_adapter imports what evaluation needs in a worker thread; a module that fails to import does not stop
    the others (it fails again, with its error, where it is used), and the thread is not a daemon."""
    import sys

    from modelops.defs.assets.training import EVALUATION_IMPORTS, _import_in_background

    sys.modules.pop("colorsys", None)
    thread = _import_in_background(("modelops_no_such_module", "colorsys"))
    assert not thread.daemon
    thread.join(timeout=30)
    assert "colorsys" in sys.modules and "modelops_no_such_module" not in sys.modules
    assert "peft" in EVALUATION_IMPORTS
