"""`modelops migrate --base <folder>`: move every customisation to a new base model without touching code or data.

For each customisation, runs its `migration_job` (adapter -> evaluation -> champion) with the new base: a fresh
adapter is trained on the current curated set with the owner's training policy, the owner's evaluation suite scores
the old champion (on its own base) and the new challenger side by side, and the promotion gate decides. The
migration report (markdown, also an MLflow artifact of the evaluation run) records per-customisation metrics,
business cost and the decision.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.settings import Settings

REPORT_METRICS = [("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("ece", "calibration error (ECE)"),
                  ("expected_cost_per_1000", "business cost per 1000")]


class MigrationError(RuntimeError):
    """The migration cannot start; the message says why and what to do."""


def migration_report(name: str, old: dict, new: dict, record: dict, curated: dict, promoted: bool) -> str:
    """Markdown: bases, data, old champion vs new challenger side by side, the gate's decision and reasons."""
    challenger, champion = record["challenger_metrics"], record["champion_metrics"] or {}
    rows = "\n".join(f"| {label} | {champion.get(key, float('nan')):.4f} | {challenger[key]:.4f} | "
                     f"{challenger[key] - champion.get(key, float('nan')):+.4f} |" for key, label in REPORT_METRICS)
    same_data = "yes" if curated["content_hash"] == old["data_content_hash"] else (
        f"no: the champion was trained on {old['data_content_hash'][:16]}")
    decision = (f"**promoted**: v{record['challenger_version']} is champion" if promoted
                else f"**refused**: v{record['champion_version']} stays champion")
    return (f"# Migration of `{name}`\n\n"
            f"| | base | sha256 | version |\n|---|---|---|---|\n"
            f"| from | {old['base_name']} | {old['base_sha256'][:16]} | v{record['champion_version']} |\n"
            f"| to | {new['base_name']} | {new['base_sha256'][:16]} | v{record['challenger_version']} |\n\n"
            f"Curated set {curated['content_hash'][:16]} ({curated['rows']} rows; "
            f"the champion's data: {same_data}).\n\n"
            f"| metric (test split) | champion (old base) | challenger (new base) | difference |\n|---|---|---|---|\n"
            f"{rows}\n\n## Decision\n\n{decision}\n\n{record['gate_markdown']}\n")


@dataclass(frozen=True)
class MigrationOutcome:
    """What happened to one customisation: promoted, refused by its gate, skipped or failed; its report section."""

    customisation: str
    status: str  # "promoted" | "refused" | "skipped" | "failed"
    report: str


def _migrate_one(c: Settings, definitions, new_base, config: dict, instance) -> MigrationOutcome:
    """Run the customisation's migration_job on the new base and write its section of the report."""
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.tags import DagsterTag
    from modelops.defs.resources import CustomisationKeys

    keys = CustomisationKeys(c.customisation)
    registry = ModelRegistry(c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root)
    old_version = registry.alias_version("champion")
    old = registry.version_info(old_version)["tags"]
    if new_base.sha256 == old["base_sha256"]:
        return MigrationOutcome(c.customisation, "skipped", f"# Migration of `{registry.model_name}`\n\nSkipped: "
                                f"champion v{old_version} already runs on {new_base.name} ({new_base.sha256[:12]}).\n")
    records = c.state / "records"
    curated = json.loads((records / "curated_training_set.json").read_text())
    result = definitions.resolve_job_def(keys.job("migration_job")).execute_in_process(
        instance=instance, run_config=keys.run_config(lora_adapter=config), raise_on_error=False,
        tags={DagsterTag.TRIGGER: "migration", DagsterTag.MIGRATION_BASE: str(new_base.path)[:4000]})
    evaluated = result.asset_materializations_for_node(f"{c.customisation}__evaluation")
    if not evaluated:
        return MigrationOutcome(c.customisation, "failed", f"# Migration of `{registry.model_name}`\n\nFailed: run "
                                f"{result.run_id} stopped before the gate could decide; see it in the Dagster UI.\n")
    record = json.loads((records / "evaluation.json").read_text())
    promoted = registry.alias_version("champion") == record["challenger_version"]
    report = migration_report(registry.model_name, old, {"base_name": new_base.name, "base_sha256": new_base.sha256},
                              record, curated, promoted)
    registry.log_text(record["mlflow_run_id"], report, "migration/report.md")
    registry.set_version_tags(record["challenger_version"], {
        "migrated_from": f"v{old_version} on {old['base_name']} ({old['base_sha256'][:12]})"})
    return MigrationOutcome(c.customisation, "promoted" if promoted else "refused", report)


def run_migration(settings: Settings, base_path: Path,
                  epochs: int | None = None) -> tuple[list[MigrationOutcome], Path]:
    """Migrate every customisation to the base at `base_path`, one after the other; the outcomes and the report."""
    import dagster as dg

    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import describe_base_model
    from modelops.definitions import build_definitions

    every = settings.customisation_settings()
    without = [c.registered_model_name for c in every if ModelRegistry(
        c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root).alias_version("champion") is None]
    if without:
        raise MigrationError(f"{', '.join(without)} ha{'s' if len(without) == 1 else 've'} no champion yet: nothing "
                             "to migrate (bootstrap first).")
    new_base = describe_base_model(base_path)
    definitions = build_definitions(settings.model_copy(update={"base_model_path": new_base.path}))
    config = {"mode": "full", **({"epochs": epochs} if epochs else {})}
    with dg.DagsterInstance.get() as instance:
        outcomes = [_migrate_one(c, definitions, new_base, config, instance) for c in every]
    path = settings.home / "migrations" / f"{time.strftime('%Y%m%dT%H%M%S')}-to-{new_base.sha256[:12]}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = "\n".join(f"| {o.customisation} | {o.status} |" for o in outcomes)
    path.write_text(f"# Migration to {new_base.name} ({new_base.sha256[:16]})\n\n| customisation | outcome |\n"
                    f"|---|---|\n{summary}\n\n" + "\n".join(o.report for o in outcomes))
    return outcomes, path
