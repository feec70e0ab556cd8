"""The drift sensor on a real instance, real model, real Evidently: skip, fire once, survive restarts, guard storms."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from modelops.core.data.datagen import generate_corpus
from modelops.core.monitoring.labelling_queue import QUEUE_COLUMNS
from modelops.core.serving.predictor import AdapterClassifier
from modelops.core.monitoring.reference import build_reference, calibration_path, save_reference
from modelops.core.registry.registry import ModelRegistry
from modelops.defs.customisation import customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.core.monitoring.drift_decision import window_key
from modelops.settings import Settings
from modelops_tests.helpers import label_feedback, write_captured_batch, write_drifted_batch


@pytest.fixture(scope="module")
def classifier(base_info, untrained_adapter_dir) -> AdapterClassifier:
    return AdapterClassifier(base_info, untrained_adapter_dir)


@pytest.fixture(scope="module")
def reference(classifier):
    """The champion's predictions on held-out data and its training vocabulary."""
    held_out = generate_corpus(600, seed=11)["text"].tolist()
    return build_reference(classifier, held_out, generate_corpus(1500, seed=12)["text"].tolist())


@pytest.fixture()
def world(tmp_path, reference, untrained_adapter_dir, fresh_mlflow_db):
    """A champion (v1) with its drift reference, an empty traffic folder and a temporary instance."""
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data")
    fresh_mlflow_db(settings.home / "mlflow.db")
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    with registry.run("train", {}) as run_id:
        version = registry.register_adapter(run_id, untrained_adapter_dir, {})
    registry.promote(version, "test champion")
    save_reference(settings.state / "reference", version, *reference)
    with dg.instance_for_test() as instance:
        yield settings, instance


def _write_batch(settings: Settings, classifier: AdapterClassifier, texts: list[str]) -> list[str]:
    """Traffic as the server captures it (real predictions); returns the ids."""
    return write_captured_batch(settings.production_dir, classifier, texts)


def _tick(settings: Settings, instance, cursor: str | None = None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources_from_settings(settings))
    return customisation_defs(settings.customisation).drift_sensor(context)


def test_no_batches_skips(world):
    settings, instance = world
    result = _tick(settings, instance)
    assert isinstance(result, dg.SkipReason) and "no new traffic" in result.skip_message


def test_small_window_waits_without_moving_the_cursor(world, classifier):
    settings, instance = world
    _write_batch(settings, classifier, generate_corpus(50, seed=1)["text"].tolist())
    result = _tick(settings, instance)
    assert "waiting for traffic: 50/200" in result.skip_reason.skip_message
    assert json.loads(result.cursor)["last_batch"] == ""  # the batch will be checked with the next ones
    assert result.dynamic_partitions_requests[0].partition_keys  # the batch is registered as a partition


def test_normal_traffic_skips_and_records_observation(world, classifier):
    settings, instance = world
    _write_batch(settings, classifier, generate_corpus(400, seed=2)["text"].tolist())
    result = _tick(settings, instance)
    assert not result.run_requests
    assert "does not call for retraining" in result.skip_reason.skip_message
    observation, evaluation = result.asset_events
    assert observation.metadata["severity"].value == "none"
    # The same window is a traffic_drift check evaluation: what the check's Plots chart over time in the UI.
    assert isinstance(evaluation, dg.AssetCheckEvaluation) and evaluation.check_name == "traffic_drift"
    assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert 0 <= evaluation.metadata["estimated_accuracy_current"].value <= 1
    assert json.loads(result.cursor)["retrains"] == []


def _run_traffic_drift_check(settings: Settings, instance) -> dg.ExecuteInProcessResult:
    c = customisation_defs(settings.customisation)
    job = dg.define_asset_job("check_traffic", selection=dg.AssetSelection.checks(c.traffic_drift))
    defs = dg.Definitions(assets=c.assets, asset_checks=[c.traffic_drift], resources=resources_from_settings(settings),
                          jobs=[job])
    return defs.resolve_job_def("check_traffic").execute_in_process(instance=instance, raise_on_error=False)


def test_traffic_drift_check_on_demand_checks_the_newest_batches_and_leaves_them_in_place(world, classifier):
    settings, instance = world
    _write_batch(settings, classifier, generate_corpus(100, seed=6)["text"].tolist())
    too_little = _run_traffic_drift_check(settings, instance)
    assert not too_little.success
    assert "not enough captured traffic: 100 valid rows, 200 needed (min_window_rows is 200)" in str(too_little.all_events)
    write_drifted_batch(settings, classifier, seed=7, rows=250)
    result = _run_traffic_drift_check(settings, instance)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["severity"].value in ("moderate", "severe")
    assert evaluation.metadata["batches"].value == 1  # the newest batch alone holds min_window_rows
    assert len(list(settings.production_dir.glob("batch-*.parquet"))) == 2  # nothing moved or quarantined


def test_drift_waits_for_labels_then_requests_one_run_with_stable_key(world, classifier):
    settings, instance = world
    ids = [*write_drifted_batch(settings, classifier, seed=3, rows=200),
           *write_drifted_batch(settings, classifier, seed=4, rows=200)]
    waiting = _tick(settings, instance)
    assert not waiting.run_requests
    assert "awaits labels: 0/100" in waiting.skip_reason.skip_message
    # The champion had a reference but no calibration for this policy: the sensor made and stored it.
    assert calibration_path(settings.state / "reference", "1").is_file()
    assert {"scores_vs_thresholds", "new_topics"} <= set(waiting.asset_events[0].metadata)
    assert waiting.asset_events[0].metadata["severity"].value in ("moderate", "severe")
    assert not waiting.asset_events[1].passed  # the traffic_drift check warns
    # While drift awaits labels, the most useful rows of the window wait in a labelling queue (the asset's partition).
    batches = sorted(p.stem for p in settings.production_dir.glob("batch-*.parquet"))
    queued = waiting.asset_events[2]
    assert (queued.asset_key, queued.partition) == (dg.AssetKey([settings.customisation, "labelling_queue"]),
                                                    batches[-1])
    queue = pd.read_csv(settings.labelling_dir / f"{batches[-1]}.csv", dtype={"id": str})
    assert list(queue.columns) == QUEUE_COLUMNS and len(queue) == 100 == queued.metadata["dagster/row_count"].value
    assert set(queue["id"]) <= set(ids) and queue["id"].is_unique
    label_feedback(settings, ids[:150], "round1")
    first = _tick(settings, instance, cursor=waiting.cursor)
    assert len(first.run_requests) == 1
    run = first.run_requests[0]
    assert run.run_key == window_key(batches)
    assert run.tags["modelops/drift_event"] == run.run_key and run.tags["modelops/trigger"] == "drift"
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    report_files = registry.client.list_artifacts(run.tags["modelops/drift_report_run"], "drift")
    assert [f.path for f in report_files] == ["drift/new_topics.md", "drift/report.html", "drift/thresholds.md"]
    thresholds = registry.client.download_artifacts(run.tags["modelops/drift_report_run"], "drift/thresholds.md")
    assert "## Calibration of champion v1" in Path(thresholds).read_text()
    assert run.run_config["ops"][f"{settings.customisation}__lora_adapter"]["config"]["mode"] in ("incremental", "full")
    # A tick re-evaluated from the same cursor (e.g. retried after a crash) yields the same run_key: one run.
    again = _tick(settings, instance, cursor=waiting.cursor)
    assert again.run_requests[0].run_key == run.run_key
    # A daemon restart resumes from the stored cursor: nothing is checked or requested twice.
    restarted = _tick(settings, instance, cursor=first.cursor)
    assert "no new traffic" in restarted.skip_message


def test_cooldown_turns_a_second_drift_into_a_skip_reason(world, classifier):
    settings, instance = world
    label_feedback(settings, write_drifted_batch(settings, classifier, seed=5), "round1")
    first = _tick(settings, instance)
    assert first.run_requests
    label_feedback(settings, write_drifted_batch(settings, classifier, seed=6), "round2")
    second = _tick(settings, instance, cursor=first.cursor)
    assert not second.run_requests
    assert "cooldown" in second.skip_reason.skip_message


def test_the_labelling_queue_asset_queues_one_batch_and_skips_rows_already_labelled(world, classifier):
    settings, instance = world
    ids = write_drifted_batch(settings, classifier, seed=5, rows=60)
    label_feedback(settings, ids[:20], "earlier")
    batch = sorted(p.stem for p in settings.production_dir.glob("batch-*.parquet"))[-1]
    defs = customisation_defs(settings.customisation)
    instance.add_dynamic_partitions(defs.keys.traffic_batches, [batch])
    result = dg.materialize([defs.labelling_queue], partition_key=batch, instance=instance,
                            resources=resources_from_settings(settings))
    assert result.success
    queue = pd.read_csv(settings.labelling_dir / f"{batch}.csv", dtype={"id": str})
    assert len(queue) == 40 and not set(queue["id"]) & set(ids[:20])  # 60 rows, 20 labelled: the other 40
    metadata = result.asset_materializations_for_node(defs.labelling_queue.op.name)[0].metadata
    assert metadata["excluded_already_labelled_or_queued"].value == 20 and "feedback" in metadata["how_to_label"].value
