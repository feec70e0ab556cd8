"""`modelops migrate` with two customisations: each is retrained on the new base, gated and reported on its own.

Lean on purpose: each customisation's first champion is a registered (untrained) adapter instead of a training run,
and the migration trains 3 steps per customisation. test_training_assets.py covers one real bootstrap + migration.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from modelops.core.registry.registry import ModelRegistry
from modelops.defs.customisation import customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.settings import PACKAGE_CONFIG_DIR, Settings
from modelops_tests.helpers import LABELS

# A gate that lets anything pass (this tests the mechanics, not a 3-step adapter's quality), on small test splits.
PERMISSIVE_GATE = {"min_eval_size": 20, "min_macro_f1": 0.0, "min_accuracy": 0.0, "min_class_f1": 0.0,
                   "macro_f1_tolerance": 1.0, "max_cost_increase": 100000.0, "max_class_f1_drop": 1.0}
CUSTOMISATIONS = {"support_router": {"registered_model_name": "support-router"}, "billing": {}}


def _policies(folder: Path) -> dict[str, Path]:
    """Training capped at 3 steps and the permissive gate, shared by both customisations."""
    training = yaml.safe_load((PACKAGE_CONFIG_DIR / "training.yaml").read_text()) | {"max_steps": 3}
    evaluation = yaml.safe_load((PACKAGE_CONFIG_DIR / "evaluation.yaml").read_text()) | {"gate": PERMISSIVE_GATE}
    (folder / "training.yaml").write_text(yaml.safe_dump(training))
    (folder / "evaluation.yaml").write_text(yaml.safe_dump(evaluation))
    return {"training_config": folder / "training.yaml", "evaluation_config": folder / "evaluation.yaml"}


def _registry(c: Settings) -> ModelRegistry:
    return ModelRegistry(c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root)


@pytest.fixture()
def installation(tmp_path: Path, fresh_mlflow_db, untrained_adapter_dir: Path, base_info, monkeypatch) -> Settings:
    """Two customisations, each with its own curated set (LABELS only, another seed) and champion v1 on MiniLM."""
    from modelops.core.data.datagen import generate_corpus

    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data", customisations=CUSTOMISATIONS,
                        **_policies(tmp_path))
    fresh_mlflow_db(settings.home / "mlflow.db")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    resources = resources_from_settings(settings)
    with dg.instance_for_test() as instance:
        for seed, c in enumerate(settings.customisation_settings()):
            corpus = generate_corpus(600, seed=seed)
            c.raw_dir.mkdir(parents=True)
            corpus[corpus["label"].isin(LABELS)].to_csv(c.raw_dir / "tickets.csv", index=False)
            defs = customisation_defs(c.customisation)
            assert dg.materialize([defs.raw_examples, defs.curated_training_set, *defs.data_checks],
                                  resources=resources, instance=instance,
                                  run_config=defs.keys.run_config(raw_examples={"source": "files"})).success
            curated = json.loads((c.state / "records" / "curated_training_set.json").read_text())
            registry = _registry(c)
            with registry.run("train", {}) as run_id:
                version = registry.register_adapter(run_id, untrained_adapter_dir, {
                    "data_content_hash": curated["content_hash"], "base_name": base_info.name,
                    "base_sha256": base_info.sha256})
            registry.promote(version, "first champion")
    return settings


def test_migrate_moves_every_customisation_to_the_new_base_with_a_report_section_each(
        installation: Settings, smaller_base_dir: Path, base_info) -> None:
    from modelops.core.training.base_model import describe_base_model
    from modelops.app.migrate import run_migration

    small = describe_base_model(smaller_base_dir)
    every = installation.customisation_settings()
    old = {c.customisation: _registry(c).alias_version("champion") for c in every}

    outcomes, report = run_migration(installation, smaller_base_dir, epochs=1)

    assert [(o.customisation, o.status) for o in outcomes] == [("support_router", "promoted"), ("billing", "promoted")]
    assert report.parent == installation.home / "migrations" and report.name.endswith(f"-to-{small.sha256[:12]}.md")
    text = report.read_text()
    assert text.startswith(f"# Migration to {small.name} ({small.sha256[:16]})")
    assert "| support_router | promoted |" in text and "| billing | promoted |" in text
    for c, outcome in zip(every, outcomes, strict=True):
        registry = _registry(c)
        new = registry.alias_version("champion")
        tags = registry.version_info(new)["tags"]
        assert new != old[c.customisation] and tags["base_sha256"] == small.sha256
        assert tags["migrated_from"] == f"v{old[c.customisation]} on {base_info.name} ({base_info.sha256[:12]})"
        assert outcome.report.startswith(f"# Migration of `{c.registered_model_name}`") and outcome.report in text
        for expected in (f"| from | {base_info.name} |", f"| to | {small.name} | {small.sha256[:16]} | v{new} |",
                         "the champion's data: yes", f"**promoted**: v{new} is champion"):
            assert expected in outcome.report, (c.customisation, expected)
        # each customisation's hand-over records and adapters stay under its own state folder
        evaluation = json.loads((c.state / "records" / "evaluation.json").read_text())
        assert evaluation["challenger_version"] == new and evaluation["champion_version"] == old[c.customisation]
        assert [a.path for a in registry.client.list_artifacts(evaluation["mlflow_run_id"], "migration")] == [
            "migration/report.md"]
        assert c.state == installation.home / "customisations" / c.customisation
        assert any((c.state / "adapters").iterdir())
    assert {c.registered_model_name for c in every} == {"support-router", "billing"}
