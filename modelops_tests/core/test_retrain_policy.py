"""Retrain policy: labels first, then cooldown and budget; severity picks the mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.core.config_files import ConfigError, load_config
from modelops.core.monitoring.retrain_policy import RetrainPolicy, decide_retrain
from modelops.settings import PACKAGE_CONFIG_DIR

POLICY = RetrainPolicy(cooldown_minutes=10, max_retrains_per_day=2, full_retrain_severity="severe", min_new_labels=50)
NOW = 1_000_000.0


def test_no_recommendation_no_run():
    assert decide_retrain("none", False, [], NOW, POLICY, 500).mode is None


def test_waits_for_labels():
    decision = decide_retrain("moderate", True, [], NOW, POLICY, 10)
    assert decision.mode is None and "awaits labels: 10/50" in decision.reason


@pytest.mark.parametrize(("severity", "mode"), [("moderate", "incremental"), ("severe", "full")])
def test_severity_picks_mode(severity, mode):
    assert decide_retrain(severity, True, [], NOW, POLICY, 50).mode == mode


def test_cooldown_and_budget():
    assert "cooldown" in decide_retrain("severe", True, [NOW - 60], NOW, POLICY, 99).reason
    assert "budget" in decide_retrain("severe", True, [NOW - 7200, NOW - 3600], NOW, POLICY, 99).reason
    assert decide_retrain("severe", True, [NOW - 90_000, NOW - 3600], NOW, POLICY, 99).mode == "full"


def test_shipped_policy_loads_and_bad_files_fail(tmp_path: Path):
    assert load_config(PACKAGE_CONFIG_DIR / "retrain.yaml", RetrainPolicy).min_new_labels == 100
    for text, message in (("cooldown: 3\n", "cooldown: unknown key"),
                          ("full_retrain_severity: none\n", "full_retrain_severity: Input should be 'moderate' or"),
                          ("max_retrains_per_day: 0\n", "max_retrains_per_day: Input should be greater than or equal")):
        path = tmp_path / "retrain.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=f"retrain.yaml: {message}"):
            load_config(path, RetrainPolicy)
