"""The `modelops` command line: deterministic generation, clear refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _modelops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELOPS_HOME": str(tmp_path / "home"), "MODELOPS_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    return subprocess.run([sys.executable, "-m", "modelops.app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def test_generate_is_deterministic_and_writes_a_scenario(tmp_path: Path):
    for name in ("a.csv", "b.csv"):
        assert _modelops(tmp_path, "generate", "--rows", "50", "--out", str(tmp_path / name)).returncode == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    out = _modelops(tmp_path, "generate", "--rows", "20", "--scenario", "language_shift")
    assert out.returncode == 0 and (tmp_path / "data" / "raw" / "generated.csv").is_file()


def test_rollback_without_champion_says_why(tmp_path: Path):
    out = _modelops(tmp_path, "rollback", "support-router")
    assert out.returncode == 2
    assert "has no champion to roll back from" in out.stderr


def test_serve_refuses_public_interface_without_token(tmp_path: Path):
    out = _modelops(tmp_path, "serve", "--host", "0.0.0.0")
    assert out.returncode == 2 and "without --token" in out.stderr


def test_demo_refuses_a_severity_outside_0_1_before_training(tmp_path: Path):
    out = _modelops(tmp_path, "demo", "--severity", "1.5")
    assert out.returncode == 2 and "severity must be a number in [0, 1] (0 = baseline, 1 = full drift), got 1.5." in (
        out.stderr)
    words = _modelops(tmp_path, "demo", "--severity", "high")
    assert words.returncode == 2 and "got 'high'" in words.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "home").exists()
