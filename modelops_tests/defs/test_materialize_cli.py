"""Analysts materialise assets on demand with Dagster's own CLI: documented config works, wrong config is refused
before anything runs, naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SELECT = "support_router/raw_examples,support_router/curated_training_set"


def _materialize(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELOPS_HOME": str(tmp_path / "home"), "MODELOPS_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "modelops.definitions",
                           "--select", SELECT, "--config-json", json.dumps(config)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_dagster_asset_materialize_with_documented_config_builds_the_curated_set(tmp_path: Path) -> None:
    out = _materialize(tmp_path, {"ops": {"support_router__raw_examples": {
        "config": {"source": "generator", "generator_rows": 1000, "generator_seed": 5}}}})
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads((tmp_path / "home" / "records" / "curated_training_set.json").read_text())
    assert 800 < record["rows"] <= 1000 and Path(record["path"]).is_file()


def test_wrong_config_is_refused_naming_the_field_and_nothing_is_written(tmp_path: Path) -> None:
    for config, field in (({"source": "database"}, "source"), ({"generator_rowz": 10}, "generator_rowz")):
        out = _materialize(tmp_path, {"ops": {"support_router__raw_examples": {"config": config}}})
        assert out.returncode != 0
        assert field in out.stderr and "support_router__raw_examples" in out.stderr, out.stderr[-3000:]
    assert not (tmp_path / "home" / "records").exists() and not (tmp_path / "home" / "assets").exists()
