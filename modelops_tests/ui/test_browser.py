"""What an operator sees, checked in a real browser: headless Chromium (Debian packages, `scripts/chromium.sh`)
driven by Selenium against `dagster dev` and `mlflow ui` on 127.0.0.1.

By default the state is a small bootstrap built here (one trained champion, one checked traffic window). With
`MODELOPS_UI_STATE=demo` it is the demo's own state (MODELOPS_HOME / MODELOPS_DATA_DIR, default `.modelops/`,
`data/`): `make screenshots` runs this after `make demo` and writes the README's screenshots to docs/screenshots/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelops.settings import Settings, load_settings
from modelops_tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120


@dataclass(frozen=True)
class Ui:
    dagster: str
    mlflow: str
    settings: Settings
    screenshots: Path


def _bootstrap_small_state(settings: Settings) -> None:
    """One champion trained on a small generated set through the bootstrap job on the persistent instance, and one
    window of normal traffic for the drift sensor (which `dagster dev`'s daemon then checks)."""
    import dagster as dg

    from modelops.core.training.base_model import describe_base_model
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.serving.predictor import AdapterClassifier
    from modelops.core.registry.registry import ModelRegistry
    from modelops.definitions import build_definitions
    from modelops.defs.resources import CustomisationKeys
    from modelops_tests.helpers import write_captured_batch

    keys = CustomisationKeys(settings.customisation)
    with dg.DagsterInstance.get() as instance:
        result = build_definitions(settings).resolve_job_def(keys.job("bootstrap_job")).execute_in_process(
            instance=instance, tags={"modelops/trigger": "cli"},
            run_config=keys.run_config(raw_examples={"generator_rows": 1000}, lora_adapter={"epochs": 2}))
    assert result.success
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name, settings.mlflow_artifact_root)
    folder = registry.download_adapter(registry.alias_version("champion"), settings.state / "serving-cache" / "v1")
    classifier = AdapterClassifier(describe_base_model(settings.resolved_base_model_path), folder)
    write_captured_batch(settings.production_dir, classifier, generate_corpus(300, seed=41)["text"].tolist())


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[Ui]:
    from modelops.app.instance import prepare_environment

    saved = dict(os.environ)
    if os.environ.get("MODELOPS_UI_STATE") != "demo":
        root = tmp_path_factory.mktemp("ui")
        os.environ.update(MODELOPS_HOME=str(root / "home"), MODELOPS_DATA_DIR=str(root / "data"),
                          DAGSTER_HOME=str(root / "home" / "dagster"))
    settings = load_settings()
    prepare_environment(settings)
    if os.environ.get("MODELOPS_UI_STATE") != "demo":
        _bootstrap_small_state(settings)
    screenshots = Path(os.environ.get("MODELOPS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    screenshots.mkdir(parents=True, exist_ok=True)
    dagster_port, mlflow_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("ui-logs")
    processes = [
        subprocess.Popen([sys.executable, "-m", "modelops.app.cli", "ui", "--port", str(dagster_port)], cwd=REPO,
                         stdout=(logs / "dagster.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "modelops.app.cli", "mlflow-ui", "--port", str(mlflow_port)], cwd=REPO,
                         stdout=(logs / "mlflow.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True),
    ]
    try:
        urls = (f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}")
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + TIMEOUT
            while not _responds(url):
                assert process.poll() is None, (logs / "dagster.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"{url} did not answer within {TIMEOUT} s"
                time.sleep(1)
        yield Ui(*urls, settings, screenshots)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)  # `dagster dev` can sit out its webserver's graceful shutdown
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        os.environ.clear()
        os.environ.update(saved)


def _responds(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver

    found = subprocess.run([str(REPO / "scripts" / "chromium.sh")], capture_output=True, text=True)
    assert found.returncode == 0, f"headless Chromium could not be installed: {found.stderr[-2000:]}"
    chromium, chromedriver = found.stdout.split()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser, url: str, expected: list[str], refresh_every: float = 0.0) -> str:
    """Open `url` and wait until the page's text shows every expected string and no dialog covers it (Dagster's
    newsletter dialog can open a moment after the page has drawn: it is skipped)."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    deadline, refreshed = time.monotonic() + TIMEOUT, time.monotonic()
    while True:
        text = browser.find_element(By.TAG_NAME, "body").text
        missing = [e for e in expected if e not in text]
        if not missing:
            time.sleep(1)  # let charts and images finish drawing (and a late dialog open) before the screenshot
            if not _dismiss_dialogs(browser):
                return browser.find_element(By.TAG_NAME, "body").text
        assert time.monotonic() < deadline, f"{url} never showed {missing} uncovered; it shows:\n{text[:3000]}"
        if refresh_every and time.monotonic() - refreshed > refresh_every:
            browser.refresh()
            refreshed = time.monotonic()
        time.sleep(1)


def _dismiss_dialogs(browser) -> bool:
    """Skip Dagster's newsletter dialog, close any other one with Escape; True when a dialog was open."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if not browser.find_elements(By.CSS_SELECTOR, ".bp5-overlay-backdrop"):
        return False
    skips = browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']")
    if skips:
        skips[0].click()
    else:
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    return True


def _screenshot(browser, ui: Ui, name: str) -> None:
    """Save the page as `name` and check it is a real image of a rendered page (a PNG of more than 20 kB)."""
    path = ui.screenshots / name
    browser.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000, path


def test_asset_graph_and_catalog_show_every_stage_materialised_with_kinds(ui: Ui, browser) -> None:
    from selenium.webdriver.common.by import By

    group = ui.settings.customisation
    _open(browser, f'{ui.dagster}/asset-groups~group:"{group}"', [
        "raw_examples", "production_traffic", "curated_training_set", "lora_adapter", "evaluation", "champion"])
    browser.find_elements(By.XPATH, "//*[@aria-label='panel_show_right']")[-1].click()  # hide the asset list
    time.sleep(2)
    _screenshot(browser, ui, "dagster-asset-graph.png")
    catalog = _open(browser, f"{ui.dagster}/assets", [f"{group} / champion", "Materialized"])
    assert "Never materialized" not in catalog
    _open(browser, f"{ui.dagster}/assets/{group}/lora_adapter", [
        "Kinds", "PyTorch", "ML Flow", "modelops/stage: training", "samples_per_second", "mlflow_run"])
    _screenshot(browser, ui, "dagster-lora-adapter.png")


def test_evaluation_materialisation_carries_metrics_gate_and_mlflow_link(ui: Ui, browser) -> None:
    text = _open(browser, f"{ui.dagster}/assets/{ui.settings.customisation}/evaluation", [
        "challenger_macro_f1", "challenger_cost_per_1000", "gate_passed", "mlflow_run", "per_class", "comparison"])
    assert "http" in text.split("mlflow_run", 1)[1][:400]  # the MLflow run link itself
    _screenshot(browser, ui, "dagster-evaluation-metadata.png")


REASONS = ("no new traffic", "waiting for traffic", "does not call for retraining", "awaits labels", "cooldown",
           "budget", "no usable new traffic", "requesting")


def test_drift_sensor_ticks_say_why_they_skipped_or_what_they_launched(ui: Ui, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _open(browser, f"{ui.dagster}/locations/modelops/sensors/{ui.settings.customisation}_drift_sensor",
          ["Latest tick", "All ticks", "last_batch", "runs requested"], refresh_every=10)
    reasons: list[str] = []
    for tag in browser.find_elements(By.XPATH, "//*[contains(normalize-space(text()), ' requested')]")[::-1]:
        ActionChains(browser).move_to_element(tag).perform()  # a tick's status tag: its tooltip is the reason
        time.sleep(1)
        reasons = [t.text for t in browser.find_elements(By.XPATH, "//*[@role='tooltip']") if t.text.strip()]
        if reasons:
            break
    assert reasons and any(reason in reasons[0] for reason in REASONS), reasons
    _screenshot(browser, ui, "dagster-drift-sensor-ticks.png")


def test_drift_scores_and_estimated_accuracy_are_plotted_on_production_traffic(ui: Ui, browser) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{ui.dagster}/assets/{ui.settings.customisation}/production_traffic?view=checks"
                   "&checkDetail=traffic_drift", ["Plots", "share_drifted", "estimated_accuracy_current"],
          refresh_every=10)
    plots = browser.find_elements(By.XPATH, "//*[normalize-space(text())='Plots']")[-1]  # the section, not the doc
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", plots)
    time.sleep(1)
    _screenshot(browser, ui, "dagster-drift-plots.png")


def test_mlflow_model_page_shows_versions_and_the_champion_alias(ui: Ui, browser) -> None:
    name = ui.settings.registered_model_name
    _open(browser, f"{ui.mlflow}/#/models/{name}", [name, "Version 1", "champion"])
    _screenshot(browser, ui, "mlflow-registered-model.png")
