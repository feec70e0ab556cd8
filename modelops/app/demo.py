"""`modelops demo`: the whole loop on embedded defaults, headless, with the real server, daemon and sensor."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from modelops.app.instance import prepare_environment, run_job
from modelops.core.data.drift_scenarios import DEMO_SCENARIO
from modelops.core.defaults import DAGSTER_UI_URL, GENERATED_ROWS, LOOPBACK, MLFLOW_UI_URL
from modelops.core.tags import DagsterTag, MlflowTag
from modelops.settings import Settings

WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"


class DemoError(RuntimeError):
    """A stage of the demo did not reach its goal in time."""


def _say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _wait_for(what: str, condition: Callable[[], object], timeout: float, every: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


def _http_json(url: str, payload: dict | None = None, timeout: float = 30.0) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _try_json(url: str) -> dict | None:
    try:
        return _http_json(url, timeout=5)
    except OSError:
        return None


def _start(stack: ExitStack, command: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handle = stack.enter_context(log_path.open("w"))
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    stack.callback(stop)
    return process


def _send(url: str, texts: list[str], chunk: int = 8, concurrency: int = 8) -> list[dict]:
    """POST texts in small concurrent requests, like many clients; returns predictions in input order."""
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda c: _http_json(f"{url}/predict", {"texts": c})["predictions"], chunks))
    return [p for answer in answers for p in answer]


def _accuracy(predictions: list[dict], labels: list[str]) -> float:
    """The model's accuracy (its best guess, also where the server handed the request to the fallback)."""
    return sum(p["predicted_label"] == y for p, y in zip(predictions, labels, strict=True)) / len(labels)


def _abstained(predictions: list[dict]) -> float:
    return sum(p["abstained"] for p in predictions) / len(predictions)


def _drift_checks(registry) -> list:
    return registry.search_runs(f"tags.`{MlflowTag.DRIFT_EVENT}` LIKE 'drift-%'")


def run_demo(settings: Settings, scenario: str = DEMO_SCENARIO, port: int = 8765, fresh: bool = True,
             rows: int = GENERATED_ROWS, epochs: int | None = None, severity: float = 0.8) -> int:
    """The loop for one customisation (`settings` after customisation_named): its data, model and sensor."""
    import dagster as dg

    from modelops.core.data.datagen import generate_corpus, generate_scenario
    from modelops.core.registry.registry import ModelRegistry

    times: dict[str, float] = {}
    started_at = datetime.now(UTC)
    start = tick = time.monotonic()

    def stage(name: str) -> None:
        nonlocal tick
        times[name] = round(time.monotonic() - tick, 1)
        tick = time.monotonic()

    if fresh:
        for path in (settings.home / "records", settings.home / "curated", settings.home / "adapters",
                     settings.home / "reference", settings.home / "evaluations", settings.home / "mlartifacts",
                     settings.home / "dagster", settings.home / "customisations", settings.raw_dir,
                     settings.production_dir, settings.feedback_dir, settings.quarantine_dir):
            shutil.rmtree(path, ignore_errors=True)
        (settings.home / "mlflow.db").unlink(missing_ok=True)
    from modelops.defs.resources import CustomisationKeys

    prepare_environment(settings)
    keys = CustomisationKeys(settings.customisation)
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)

    _say(f"1/7 generating the default support-ticket corpus ({rows:,} rows) into data/raw/")
    settings.raw_dir.mkdir(parents=True, exist_ok=True)
    generate_corpus(rows, seed=0).to_csv(settings.raw_dir / "generated.csv", index=False)
    bootstrap = keys.job("bootstrap_job")
    _say(f"2/7 {bootstrap}: raw_examples -> curated_training_set -> lora_adapter -> evaluation -> champion")
    if not run_job(bootstrap, keys.run_config(lora_adapter={"epochs": epochs}) if epochs else {}):
        raise DemoError(f"{bootstrap} failed; open the Dagster UI (make ui) to see why")
    first = registry.alias_version("champion")
    first_eval = json.loads((settings.state / "records" / "evaluation.json").read_text())
    stage("bootstrap (train + evaluate + promote v1)")

    url = f"http://{LOOPBACK}:{port}"
    logs = settings.home / "logs"
    with ExitStack() as stack:
        _say(f"3/7 starting the server on {url} (champion v{first}) and the Dagster daemon (drift sensor)")
        _start(stack, [sys.executable, "-m", "modelops.app.cli", "serve", "--port", str(port), "--batch-rows", "200",
                       "--batch-seconds", "3", "--reload-seconds", "2"], logs / "server.log")
        daemon = Path(sys.executable).with_name("dagster-daemon")
        _start(stack, [str(daemon), "run", "-w", str(WORKSPACE)], logs / "daemon.log")
        _wait_for("the server to load the champion",
                  lambda: (_try_json(f"{url}/health") or {}).get("status") == "ok", 180)
        stage("server + daemon start")

        _say("4/7 sending 400 normal tickets")
        normal = generate_corpus(400, seed=101)
        normal_predictions = _send(url, normal["text"].tolist())
        checks_before = len(_drift_checks(registry))
        _wait_for("the drift sensor to check the normal traffic",
                  lambda: len(_drift_checks(registry)) > checks_before, 180)
        normal_check = _drift_checks(registry)[0]
        stage("normal traffic + drift check")

        _say(f"5/7 sending 900 tickets of drift scenario '{scenario}' (severity {severity}); "
             "annotators label 500 of them (data/feedback/)")
        drifted = generate_scenario(scenario, 900, seed=202, severity=severity)
        labelled, held_out = drifted.iloc[:700], drifted.iloc[700:]
        predictions = _send(url, labelled["text"].tolist())
        feedback = pd.DataFrame({"id": [p["id"] for p in predictions[:500]], "label": labelled["label"].iloc[:500]})
        settings.feedback_dir.mkdir(parents=True, exist_ok=True)
        feedback.to_csv(settings.feedback_dir / f"labels-{scenario}.csv", index=False)
        answers_before = _send(url, held_out["text"].tolist())
        before = _accuracy(answers_before, held_out["label"].tolist())

        _say("6/7 waiting for the drift sensor to request a retrain and for the run to finish")
        with dg.DagsterInstance.get() as instance:
            run = _wait_for("a drift-triggered run", lambda: next(iter(instance.get_runs(
                dg.RunsFilter(tags={DagsterTag.TRIGGER: "drift"}, created_after=started_at), limit=1)), None), 240)
            finished = _wait_for("the retrain run to finish", lambda: (
                lambda r: r if r.is_finished else None)(instance.get_run_by_id(run.run_id)), 600, every=5)
            step_seconds = {step.step_key.removeprefix(f"{settings.customisation}__"): round(
                step.end_time - step.start_time, 1) for step in instance.get_run_step_stats(finished.run_id)
                if step.start_time and step.end_time and step.end_time - step.start_time >= 0.05}
        stage("drift detected + retrain run")
        drift_run = _drift_checks(registry)[0]
        champion = registry.alias_version("champion")
        evaluation = json.loads((settings.state / "records" / "evaluation.json").read_text())
        if evaluation["challenger_version"] == first:
            raise DemoError(f"retrain run {finished.run_id} ended {finished.status.value} before evaluation; "
                            f"see {logs / 'daemon.log'} or the Dagster UI")
        if champion != first:
            _say(f"7/7 v{champion} promoted; waiting for the server to reload it")
            _wait_for("the server to serve the new champion",
                      lambda: (_try_json(f"{url}/model") or {}).get("version") == champion, 120)
        else:
            _say(f"7/7 the gate kept v{first}: {evaluation['reasons']}")
        answers_after = _send(url, held_out["text"].tolist())
        after = _accuracy(answers_after, held_out["label"].tolist())
        served = _try_json(f"{url}/model") or {}
        stage("reload + after-check")

    summary = {
        "scenario": scenario, "first_champion": first, "final_champion": champion,
        "retrain_run": {"id": finished.run_id, "status": finished.status.value,
                        "mode": finished.tags.get(DagsterTag.RETRAIN_MODE),
                        "drift_severity": finished.tags.get(DagsterTag.DRIFT_SEVERITY),
                        "seconds_per_step": step_seconds},  # where the run's time goes (steps of 0.05 s or more)
        "v1_test_macro_f1": first_eval["challenger_metrics"]["macro_f1"],
        "gate_passed": evaluation["passed"], "gate_reasons": evaluation["reasons"],
        "challenger_test_macro_f1": evaluation["challenger_metrics"]["macro_f1"],
        "champion_test_macro_f1_same_split": (evaluation["champion_metrics"] or {}).get("macro_f1"),
        "served_variant": served.get("variant"), "served_variant_reason": served.get("variant_reason"),
        "normal_traffic_share_drifted": normal_check.data.metrics.get("share_drifted"),
        "drifted_traffic_share_drifted": drift_run.data.metrics.get("share_drifted"),
        "drifted_estimated_accuracy": drift_run.data.metrics.get("estimated_accuracy_current"),
        "held_out_drifted_accuracy_before": round(before, 4), "held_out_drifted_accuracy_after": round(after, 4),
        "held_out_drifted_abstained_before": round(_abstained(answers_before), 4),
        "held_out_drifted_abstained_after": round(_abstained(answers_after), 4),
        "normal_traffic_predictions": len(normal_predictions),
        "seconds_per_stage": times, "total_seconds": round(time.monotonic() - start, 1),
    }
    (settings.home / "demo-summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(summary, settings)
    # A refused challenger is a correct outcome of the loop; a crashed run is not.
    return 0 if finished.status == dg.DagsterRunStatus.SUCCESS or not evaluation["passed"] else 1


def _print_summary(summary: dict, settings: Settings) -> None:
    print("\n==================== modelops demo summary ====================")
    for key, value in summary.items():
        print(f"{key:38s} {value}")
    print(f"\nfull summary: {settings.home / 'demo-summary.json'}")
    print(f"Dagster UI : make ui         -> {DAGSTER_UI_URL} (Assets, Runs, Automation > "
          f"{settings.customisation}_drift_sensor ticks)")
    print(f"MLflow UI  : make mlflow-ui  -> {MLFLOW_UI_URL} (experiment 'modelops', model "
          f"'{settings.registered_model_name}')")
