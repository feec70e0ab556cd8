"""`modelops migrate --base <folder>`: move a customisation to a new base model without touching its code or data.

Runs `migration_job` (adapter -> evaluation -> champion) with the new base: a fresh adapter is trained on the
current curated set with the owner's training policy, the owner's evaluation suite scores the old champion (on its
own base) and the new challenger side by side, and the promotion gate decides. The migration report (markdown, also
an MLflow artifact of the evaluation run) records per-customisation metrics, business cost and the decision.
"""

from __future__ import annotations

import dataclasses
import json
import time
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
            f"Curated set {curated['content_hash'][:16]} ({curated['rows']} rows; the champion's data: {same_data}).\n\n"
            f"| metric (test split) | champion (old base) | challenger (new base) | difference |\n|---|---|---|---|\n"
            f"{rows}\n\n## Decision\n\n{decision}\n\n{record['gate_markdown']}\n")


def run_migration(settings: Settings, base_path: Path, epochs: int | None = None) -> tuple[bool, str, Path]:
    """Migrate the configured customisation to the base at `base_path`; returns (promoted, report, report path)."""
    import dagster as dg

    from modelops.core.base_model import describe_base_model
    from modelops.core.registry import ModelRegistry
    from modelops.definitions import build_definitions
    from modelops.defs.sensors import TRIGGER_TAG

    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    old_version = registry.alias_version("champion")
    if old_version is None:
        raise MigrationError(f"{registry.model_name} has no champion yet: nothing to migrate (bootstrap first).")
    old = registry.version_info(old_version)["tags"]
    new_base = describe_base_model(base_path)
    if new_base.sha256 == old["base_sha256"]:
        raise MigrationError(f"The champion v{old_version} already runs on {new_base.name} ({new_base.sha256[:12]}).")
    records = settings.home / "records"
    curated = json.loads((records / "curated_training_set.json").read_text())
    job = build_definitions(dataclasses.replace(settings, base_model_path=new_base.path)).resolve_job_def("migration_job")
    config = {"mode": "full", **({"epochs": epochs} if epochs else {})}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, run_config={"ops": {"lora_adapter": {"config": config}}}, raise_on_error=False,
            tags={TRIGGER_TAG: "migration", "modelops/migration_base": str(new_base.path)[:4000]})
    trained = result.asset_materializations_for_node("lora_adapter")
    evaluated = result.asset_materializations_for_node("evaluation")
    if not trained or not evaluated:
        raise MigrationError(f"Migration run {result.run_id} failed before the gate could decide; see the Dagster UI.")
    record = json.loads((records / "evaluation.json").read_text())
    promoted = registry.alias_version("champion") == record["challenger_version"]
    new = {"base_name": new_base.name, "base_sha256": new_base.sha256}
    report = migration_report(registry.model_name, old, new, record, curated, promoted)
    path = settings.home / "migrations" / f"{time.strftime('%Y%m%dT%H%M%S')}-v{old_version}-to-v{record['challenger_version']}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report)
    registry.log_text(record["mlflow_run_id"], report, "migration/report.md")
    registry.client.set_model_version_tag(registry.model_name, record["challenger_version"], "migrated_from",
                                          f"v{old_version} on {old['base_name']} ({old['base_sha256'][:12]})")
    return promoted, report, path
