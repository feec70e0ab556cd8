"""Several customisations in one modelops.yaml: their own Dagster objects, resources, data and state; bad configs
refused with a clear message. Fast: no training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from modelops.core.config_files import ConfigError
from modelops.settings import Settings, load_settings

NAMES = ("support", "billing")
ASSETS = ("raw_examples", "production_traffic", "curated_training_set", "lora_adapter", "evaluation", "champion",
          "labelling_queue")
JOBS = ("data_job", "retrain_job", "bootstrap_job", "migration_job", "drift_check_job")
DATA_CHECKS = {"curated_no_leakage", "curated_min_examples_per_label", "curated_no_pii_residue", "curated_schema"}


def _config(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "modelops.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))  # customisations keep their declared order
    return path


@pytest.fixture()
def two(tmp_path: Path) -> Settings:
    """support (default model name and data folder) and billing (its own model name and data folder)."""
    return load_settings(_config(tmp_path, {
        "home": str(tmp_path / "home"), "data_dir": str(tmp_path / "data"),
        "customisations": {"support": None, "billing": {"registered_model_name": "billing-router",
                                                        "data_dir": str(tmp_path / "billing-data")}}}))


def test_each_customisation_gets_its_own_group_keys_jobs_sensor_and_schedule(two: Settings):
    from modelops.definitions import build_definitions

    defs = build_definitions(two)
    defs.get_repository_def()  # resolves every job: fails on a missing resource key
    specs = defs.resolve_all_asset_specs()
    assert {(s.key.path[0], s.group_name) for s in specs} == {(name, name) for name in NAMES}
    assert {s.key for s in specs} == {dg.AssetKey([name, asset]) for name in NAMES for asset in ASSETS}
    checks = defs.resolve_asset_graph().asset_check_keys
    assert checks == {dg.AssetCheckKey(dg.AssetKey([name, "curated_training_set"]), check)
                      for name in NAMES for check in DATA_CHECKS} | {
        dg.AssetCheckKey(dg.AssetKey([name, "evaluation"]), "promotion_gate") for name in NAMES} | {
        dg.AssetCheckKey(dg.AssetKey([name, "production_traffic"]), "traffic_drift") for name in NAMES}
    jobs = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == {f"{name}_{job}" for name in NAMES for job in JOBS}
    assert {(s.name, s.job_name) for s in defs.sensors} == {(f"{n}_drift_sensor", f"{n}_retrain_job") for n in NAMES}
    assert {(s.name, s.job_name) for s in defs.schedules} == {
        (f"{n}_weekly_full_retrain", f"{n}_retrain_job") for n in NAMES}
    for schedule in defs.schedules:  # the weekly retrain configures its own customisation's adapter
        name = schedule.name.removesuffix("_weekly_full_retrain")
        assert schedule.evaluate_tick(dg.build_schedule_context()).run_requests[0].run_config == {
            "ops": {f"{name}__lora_adapter": {"config": {"mode": "full"}}}}
    from modelops.defs.customisation import customisation_defs

    assert customisation_defs("billing").production_traffic.partitions_def.name == "billing_traffic_batches"


def test_each_customisation_has_its_own_data_state_and_registered_model(two: Settings, tmp_path: Path):
    from modelops.defs.resources import resources_from_settings

    support, billing = two.customisation_settings()
    assert (support.customisation, billing.customisation) == NAMES
    assert (support.registered_model_name, billing.registered_model_name) == ("support", "billing-router")
    assert (support.data_dir, billing.data_dir) == (tmp_path / "data" / "support", tmp_path / "billing-data")
    assert (support.state, billing.state) == (tmp_path / "home" / "customisations" / "support",
                                              tmp_path / "home" / "customisations" / "billing")
    assert support.curated_dir == support.state / "curated" and billing.adapters_dir == billing.state / "adapters"
    assert support.tracking_uri == billing.tracking_uri == two.tracking_uri  # one MLflow store, one model each
    resources = resources_from_settings(two)
    assert set(resources) == {"base_model", "training", "lakes", "mlflow", "policies"}
    for c in (support, billing):
        lake = resources["lakes"].of(c.customisation)
        assert (lake.data_dir, lake.home) == (str(c.data_dir), str(c.state))
        assert resources["mlflow"].of(c.customisation).model_name == c.registered_model_name
    with pytest.raises(dg.Failure,
                       match=r"No data lake for customisation 'nobody'; configured: \['billing', 'support'\]"):
        resources["lakes"].of("nobody")
    assert two.customisation_named("billing") == billing
    with pytest.raises(ConfigError, match="Name a customisation; configured: support, billing"):
        two.customisation_named(None)
    with pytest.raises(ConfigError, match="No customisation 'shipping'; configured: support, billing"):
        two.customisation_named("shipping")


def test_every_drift_sensor_ticks_at_the_configured_interval(two: Settings, monkeypatch: pytest.MonkeyPatch):
    from modelops.definitions import build_definitions

    config = two.home.parent / "modelops.yaml"
    assert {s.minimum_interval_seconds for s in build_definitions(two).sensors} == {15}
    monkeypatch.setenv("MODELOPS_DRIFT_SENSOR_INTERVAL_SECONDS", "3")
    assert {s.minimum_interval_seconds for s in build_definitions(load_settings(config)).sensors} == {3}
    monkeypatch.setenv("MODELOPS_DRIFT_SENSOR_INTERVAL_SECONDS", "0")
    with pytest.raises(ConfigError, match="MODELOPS_DRIFT_SENSOR_INTERVAL_SECONDS"):
        load_settings(config)


def test_without_customisations_the_single_one_is_named_after_the_model(tmp_path: Path):
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "data")
    (only,) = settings.customisation_settings()
    assert only.customisation == "support_router" and only.state == settings.home
    assert settings.customisation_named(None) == settings


@pytest.mark.parametrize(("customisations", "message"), [
    ({"2bad": {}}, "customisation name '2bad' must start with a letter and hold only letters, digits and underscores"),
    ({"with-dash": {}}, "customisation name 'with-dash' must start with a letter"),
    ({"billing": {"mlflow_tracking_uri": "http://mlflow:5000"}},  # one MLflow store for all customisations
     r"customisations.billing.mlflow_tracking_uri: unknown key; expected one of \['task', 'base_model_path'"),
    ({"support": {"registered_model_name": "router"}, "billing": {"registered_model_name": "router"}},
     "customisations support and billing share registered_model_name router"),
    ({"support": {"data_dir": "shared"}, "billing": {"data_dir": "shared"}},
     "customisations support and billing share data_dir .*shared"),
    ({"support": None, "support_x": {}, "billing": {"registered_model_name": "support"}},
     "customisations support and billing share registered_model_name support"),
    (["support", "billing"], "customisations: Input should be a valid dictionary"),
    ({}, "customisations: customisations must map each customisation's name to its settings"),
    ({"billing": "billing-router"}, "customisations.billing: Input should be a valid dictionary"),
])
def test_bad_customisations_are_refused_with_a_clear_message(tmp_path: Path, customisations: object, message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings(_config(tmp_path, {"customisations": customisations}))


def test_launcher_settings_of_the_old_flat_form_say_where_they_moved(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"modelops.yaml: training_launcher is now `launcher` under `training:` \(the "
                                          "variable MODELOPS_TRAINING_LAUNCHER is unchanged\)"):
        load_settings(_config(tmp_path, {"training_launcher": "kubernetes"}))
    settings = load_settings(_config(tmp_path, {"training": {"launcher": "kubernetes", "image": "x", "gpus": 1}}))
    assert (settings.training.launcher, settings.training.image, settings.training.gpus) == ("kubernetes", "x", 1)


def test_data_assets_of_each_customisation_materialise_into_their_own_folders(two: Settings):
    from modelops.defs.customisation import customisation_defs
    from modelops.defs.resources import resources_from_settings

    resources = resources_from_settings(two)
    hashes = {}
    with dg.instance_for_test() as instance:
        for seed, c in enumerate(two.customisation_settings()):
            defs = customisation_defs(c.customisation)
            before = {p for other in two.customisation_settings() if other != c for p in _files(other)}
            result = dg.materialize([defs.raw_examples, defs.curated_training_set], resources=resources,
                                    instance=instance, run_config=defs.keys.run_config(
                                        raw_examples={"generator_rows": 300, "generator_seed": seed}))
            assert result.success
            record = json.loads((c.state / "records" / "curated_training_set.json").read_text())
            assert Path(record["path"]).parent == c.curated_dir and Path(record["path"]).is_file()
            assert (c.state / "assets" / "raw_examples.parquet").is_file()
            hashes[c.customisation] = record["content_hash"]
            after = {p for other in two.customisation_settings() if other != c for p in _files(other)}
            assert after == before  # the other customisation's folders are untouched
            keys = {e.asset_key for e in result.get_asset_materialization_events()}
            assert keys == {dg.AssetKey([c.customisation, "raw_examples"]),
                            dg.AssetKey([c.customisation, "curated_training_set"])}
    assert hashes["support"] != hashes["billing"]
    assert not (two.home / "records").exists() and not (two.home / "curated").exists()  # nothing in the shared home


def _files(c: Settings) -> set[tuple[Path, int]]:
    """Every file of a customisation's data and state folders, with its modification time."""
    folders = (c.state, c.data_dir)
    return {(p, p.stat().st_mtime_ns) for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


def _modelops(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELOPS_CONFIG": str(config), "MODELOPS_HOME": str(tmp_path / "home"),
           "MODELOPS_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    return subprocess.run([sys.executable, "-m", "modelops.app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, check=False)


def test_cli_materialize_runs_the_job_of_every_customisation_or_of_the_named_one(tmp_path: Path):
    from modelops.core.data.datagen import generate_corpus

    config = _config(tmp_path, {"customisations": {"support": {}, "billing": {}}})
    for seed, name in enumerate(NAMES):
        raw = tmp_path / "data" / name / "raw"
        raw.mkdir(parents=True)
        generate_corpus(1000, seed=seed).to_csv(raw / "tickets.csv", index=False)
    out = _modelops(tmp_path, config, "materialize", "data_job")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "support_data_job: succeeded" in out.stdout and "billing_data_job: succeeded" in out.stdout
    records = {name: json.loads((tmp_path / "home" / "customisations" / name / "records" /
                                 "curated_training_set.json").read_text()) for name in NAMES}
    assert records["support"]["content_hash"] != records["billing"]["content_hash"]
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert sorted(run.job_name for run in instance.get_runs()) == ["billing_data_job", "support_data_job"]

    (tmp_path / "home" / "customisations" / "support" / "records" / "curated_training_set.json").unlink()
    out = _modelops(tmp_path, config, "materialize", "data_job", "--customisation", "billing")
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "billing_data_job: succeeded", out.stderr
    assert not (tmp_path / "home" / "customisations" / "support" / "records" / "curated_training_set.json").exists()

    out = _modelops(tmp_path, config, "materialize", "data_job", "--customisation", "shipping")
    assert out.returncode == 2 and "error: No customisation 'shipping'; configured: support, billing" in out.stderr
    bad = _config(tmp_path / "home", {"customisations": {"with-dash": {}}})
    out = _modelops(tmp_path, bad, "materialize", "data_job")
    assert out.returncode == 2 and out.stderr.startswith(
        f"error: {tmp_path / 'home' / 'modelops.yaml'}: customisations: customisation name 'with-dash' must start"), \
        out.stderr
