"""MLflow registry: versions, aliases, promotion history, rollback, and loading the champion in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.core.registry.registry import ModelRegistry, validate_model_name
from modelops.core.registry.store import RegistryError


@pytest.fixture()
def registry(tmp_path: Path, fresh_mlflow_db) -> ModelRegistry:
    return ModelRegistry(fresh_mlflow_db(tmp_path / "mlflow.db"), "support-router", tmp_path / "artifacts")


def _register(registry: ModelRegistry, adapter_dir: Path) -> str:
    with registry.run("train", {"modelops.mode": "full"}) as run_id:
        registry.log_params(run_id, {"seed": 0})
        registry.log_metrics(run_id, {"val_macro_f1": 0.5}, step=1)
        return registry.register_adapter(run_id, adapter_dir, {"data_content_hash": "abc"})


def test_register_promote_rollback_history(registry: ModelRegistry, untrained_adapter_dir: Path):
    assert registry.alias_version("champion") is None
    with pytest.raises(RegistryError, match="has no 'champion' version yet"):
        registry.champion_version()  # what a server loads: no champion is an error that says what to do
    v1 = _register(registry, untrained_adapter_dir)
    assert registry.alias_version("challenger") == v1
    assert registry.promote(v1, "first model") is None
    v2 = _register(registry, untrained_adapter_dir)
    assert registry.promote(v2, "better") == v1
    assert registry.alias_version("champion") == registry.champion_version() == v2
    assert registry.rollback("bad in production") == v1
    assert registry.alias_version("champion") == v1
    assert registry.version_info(v2)["tags"]["rolled_back"] == "true"
    history = registry.promotion_history()
    assert [(e.action, e.version, e.previous) for e in history] == [
        ("promote", v1, None), ("promote", v2, v1), ("rollback", v1, v2)]
    with pytest.raises(RegistryError, match="first champion"):
        registry.rollback()


def test_failed_run_is_marked_failed(registry: ModelRegistry):
    with pytest.raises(RuntimeError), registry.run("train", {}) as run_id:
        raise RuntimeError("boom")
    assert registry.client.get_run(run_id).info.status == "FAILED"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "x" * 101, "bad name"])
def test_model_names_are_validated(name: str):
    with pytest.raises(RegistryError):
        validate_model_name(name)


def test_fresh_process_loads_champion_and_predicts(registry: ModelRegistry, untrained_adapter_dir: Path, tmp_path: Path):
    registry.promote(_register(registry, untrained_adapter_dir), "first")
    script = f"""
import json, os
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
from modelops.core.training.base_model import describe_base_model
from modelops.core.serving.served_model import load_champion
from modelops.core.registry.registry import ModelRegistry
from modelops.settings import default_base_model_path
registry = ModelRegistry({registry.tracking_uri!r}, "support-router")
served = load_champion(registry, describe_base_model(default_base_model_path()),
                       Path({str(tmp_path / 'cache')!r}))
version, clf = served.version, served.classifier
p = clf.predict(["my invoice is wrong", "where is my parcel"])
print(json.dumps({{"version": version, "labels": p.labels, "conf": p.confidences.tolist()}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["version"] == "1"
    assert set(result["labels"]) <= {"billing", "refund", "shipping"} and len(result["labels"]) == 2
    assert all(0 < c <= 1 for c in result["conf"])
