"""What can be validated here of the scale-out profiles: instance configs load, manifests parse, values fit the chart.

Not exercised here (no cluster, no Docker daemon): `helm install`, `kubectl apply` and `docker build` themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelops.core.config_files import ConfigError
from modelops.app.instance import EMBEDDED_PROFILE, POSTGRES_PROFILE
from modelops.settings import Settings, postgres_database_url

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("profile", [EMBEDDED_PROFILE, POSTGRES_PROFILE])
def test_instance_profiles_validate_against_dagster(profile: Path, tmp_path: Path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    monkeypatch.setenv("MODELOPS_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@127.0.0.1:1/dagster")
    (tmp_path / "dagster.yaml").write_text(profile.read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert {"key": "modelops/training", "value": "true", "limit": 1} in config["concurrency"]["runs"][
        "tag_concurrency_limits"]
    assert config["concurrency"]["pools"]["default_limit"] == 1  # the limit of the modelops_training pool
    if profile == POSTGRES_PROFILE:
        assert config["storage"]["postgres"]["postgres_url"] == {"env": "MODELOPS_DAGSTER_POSTGRES_URL"}


def test_helm_values_give_a_valid_k8s_run_launcher_and_code_location():
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    # What the chart renders into the instance's dagster.yaml from these values.
    launcher = {"env_secrets": [s["name"] for s in chart["envSecrets"]],
                "run_k8s_config": {"container_config": chart["runK8sConfig"]["containerConfig"],
                                   "pod_spec_config": chart["runK8sConfig"]["podSpecConfig"]}}
    processed = process_config(K8sRunLauncher.config_type(), {"instance_config_map": "cm", **launcher})
    assert processed.success, processed.errors
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "modelops.definitions"]
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlDatabase"] == "dagster"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert {"key": "modelops/training", "value": "true", "limit": 1} in values["concurrency"]["runs"][
        "tagConcurrencyLimits"]
    assert values["concurrency"]["pools"]["defaultLimit"] == 1


def test_mlflow_manifests_parse_and_wire_postgres_and_s3():
    deployment, service = yaml.safe_load_all((DEPLOY / "k8s" / "mlflow.yaml").read_text())
    assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = " ".join(container["args"])
    assert "postgresql+psycopg2://" in command and "/mlflow" in command and "--artifacts-destination s3://" in command
    assert {e["name"] for e in container["env"]} >= {"MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "POSTGRES_PASSWORD"}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_dockerfile_serves_the_code_location_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    assert '"-m", "modelops.definitions"' in text and "USER modelops" in text and 'torch==2.13.0' in text


def test_postgres_url_setting_derives_both_stores_and_rejects_garbage():
    settings = Settings(postgres_url="postgresql://modelops:secret@db.internal:5432")
    assert settings.tracking_uri == "postgresql+psycopg2://modelops:secret@db.internal:5432/mlflow"
    assert postgres_database_url("postgresql://u@h:1/other", "dagster", driver="") == "postgresql://u@h:1/dagster"
    with pytest.raises(ConfigError, match="postgresql://user:password@host:5432"):
        postgres_database_url("mysql://u@h:1", "dagster")


def test_an_mlflow_server_places_artifacts_itself(tmp_path: Path):
    from modelops.defs.resources import resources_from_settings

    server = Settings(home=tmp_path, mlflow_tracking_uri="http://mlflow:5000")
    assert server.mlflow_artifact_root is None
    assert resources_from_settings(server)["mlflow"].of(server.customisation).registry().artifact_root is None
    assert Settings(home=tmp_path).mlflow_artifact_root == tmp_path / "mlartifacts"


def _run_pod_env() -> dict[str, str]:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    container = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_training_pod_gets_the_gpus_the_shared_volume_and_the_pipes_entry_point(monkeypatch):
    from dagster_k8s.pipes import build_pod_body

    from modelops.defs.resources import resources_from_settings
    from modelops.settings import load_settings

    env = _run_pod_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELOPS_HOME", "/var/modelops/state")  # as deploy/Dockerfile sets them
    monkeypatch.setenv("MODELOPS_DATA_DIR", "/var/modelops/data")
    settings = load_settings()
    launcher = resources_from_settings(settings)["training"]
    assert launcher.launcher == "kubernetes" and launcher.gpus == 1
    for folder in (settings.home, settings.data_dir):  # the training pod sees the run pod's files at the same paths
        assert Path(folder).is_relative_to(launcher.mount_path)
    pod = build_pod_body("train-1", launcher.image, launcher.command("python"), {"DAGSTER_PIPES_CONTEXT": "x"}, None,
                         launcher.pod_spec())  # what PipesK8sClient submits: validated against the Kubernetes models
    container = pod.spec.containers[0]
    assert container.image == env["MODELOPS_TRAINING_IMAGE"]
    assert container.command == ["python", "-m", "modelops.app.training_process"]
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.volume_mounts[0].mount_path == "/var/modelops"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == env["MODELOPS_TRAINING_VOLUME_CLAIM"]
    assert pod.spec.restart_policy == "Never"


def test_several_training_processes_start_under_torchrun_and_bad_launcher_settings_are_refused(monkeypatch):
    import dagster as dg

    from modelops.defs.resources import TrainingLauncher
    from modelops.settings import load_settings

    command = TrainingLauncher(processes=4).command("python")
    assert command[:3] == ["python", "-m", "torch.distributed.run"] and "--nproc-per-node=4" in command
    assert command[-2:] == ["-m", "modelops.app.training_process"]
    with pytest.raises(ValueError, match="processes"):
        TrainingLauncher(processes=0)
    with pytest.raises(dg.Failure, match="training.mount_path"):
        TrainingLauncher(launcher="kubernetes", volume_claim="data").pod_spec()
    monkeypatch.setenv("MODELOPS_TRAINING_LAUNCHER", "slurm")
    with pytest.raises(ConfigError, match="MODELOPS_TRAINING_LAUNCHER: Input should be 'subprocess' or 'kubernetes'"):
        load_settings()
    monkeypatch.setenv("MODELOPS_TRAINING_LAUNCHER", "subprocess")
    monkeypatch.setenv("MODELOPS_TRAINING_GPUS", "one")
    with pytest.raises(ConfigError, match="MODELOPS_TRAINING_GPUS: Input should be a valid integer.*got 'one'"):
        load_settings()
