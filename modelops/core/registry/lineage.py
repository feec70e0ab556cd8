"""The audit chain of a model version: drift event -> traffic batches -> curated set -> training -> evaluation ->
gate -> promotion, read from the MLflow tags modelops writes (and, when given, the Dagster run that trained it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelops.core.tags import DagsterTag, MlflowTag


@dataclass(frozen=True)
class Link:
    """One step of the chain: what happened and where to look it up."""

    stage: str
    summary: str
    reference: str


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def version_lineage(registry: Any, version: str,
                    find_dagster_run: Callable[[str], dict[str, Any] | None] = lambda run_id: None) -> list[Link]:
    """The chain behind `version`, oldest first. `find_dagster_run`: status and tags of a Dagster run by id, or None
    when the instance does not know it (the MLflow copy of the run's tags is used then)."""
    info = registry.version_info(version)
    tags = info["tags"]
    dagster_run = find_dagster_run(tags["dagster_run_id"]) if tags.get("dagster_run_id") else None
    training = registry.get_run(info["run_id"])
    run_tags = training.data.tags
    dagster_tags = (dagster_run or {}).get("tags") or {
        k.removeprefix("dagster."): v for k, v in run_tags.items() if k.startswith("dagster.")}
    links: list[Link] = []
    trigger = dagster_tags.get(DagsterTag.TRIGGER, "manual")
    if DagsterTag.DRIFT_EVENT in dagster_tags:
        links.append(Link("drift event", f"severity {dagster_tags.get(DagsterTag.DRIFT_SEVERITY, '?')}, "
                          f"retrain mode {dagster_tags.get(DagsterTag.RETRAIN_MODE, '?')}",
                          f"window {dagster_tags[DagsterTag.DRIFT_EVENT]}"))
        batches = [b for b in dagster_tags.get(DagsterTag.DRIFT_BATCHES, "").split(",") if b]
        links.append(Link("traffic batches", f"{len(batches)} batch(es)", ", ".join(batches)))
    else:
        links.append(Link("trigger", trigger, "no drift event: run requested by hand or schedule"))
    links.append(Link("curated set", f"content hash {tags.get('data_content_hash', '?')[:16]}",
                      f"curated/{tags.get('data_content_hash', '?')}.parquet"))
    params = training.data.params
    warm = f", warm start from v{tags['warm_start_version']}" if tags.get("warm_start_version") else ""
    status = f", Dagster run {dagster_run['status']}" if dagster_run else ""
    links.append(Link("training", f"{tags.get('mode', '?')} on {tags.get('base_name', '?')} "
                      f"(sha256 {tags.get('base_sha256', '?')[:12]}), seed {tags.get('seed', '?')}, "
                      f"{params.get('train_rows', '?')} rows{warm}{status}",
                      f"MLflow run {info['run_id']}, Dagster run {tags.get('dagster_run_id', '?')}"))
    evaluations = registry.search_runs(f"tags.`{MlflowTag.CHALLENGER_VERSION}` = '{version}'", newest_first=True,
                                       max_results=1)
    if evaluations:
        evaluation = evaluations[0]
        f1 = evaluation.data.metrics.get("challenger_macro_f1")
        against = evaluation.data.tags.get(MlflowTag.CHAMPION_VERSION, "None")
        links.append(Link("evaluation", f"macro-F1 {f1:.4f}" if f1 is not None else "no metrics",
                          f"MLflow run {evaluation.info.run_id} (against champion {against})"))
        links.append(Link("gate", "passed" if evaluation.data.tags.get(MlflowTag.GATE_PASSED) == "True" else "refused",
                          f"MLflow run {evaluation.info.run_id}, artifact evaluation/report.md"))
    else:
        links.append(Link("evaluation", "not evaluated", "-"))
    moves = [e for e in registry.promotion_history() if e.version == version]
    for event in moves:
        links.append(Link(event.action, f"champion v{event.previous} -> v{event.version} at {_when(event.timestamp)}",
                          event.reason.splitlines()[0][:120] if event.reason else "-"))
    if not moves:
        links.append(Link("promotion", "never champion", "-"))
    return links


def champion_history(registry: Any) -> list[tuple[str, str | None, str]]:
    """(from, until or None while current, version) for every period a version held `champion`."""
    events = registry.promotion_history()
    periods = []
    for i, event in enumerate(events):
        until = _when(events[i + 1].timestamp) if i + 1 < len(events) else None
        periods.append((_when(event.timestamp), until, event.version))
    return periods
