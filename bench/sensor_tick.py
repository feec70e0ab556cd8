"""Code-location load time and drift-sensor tick time, each against a bare-Dagster baseline in the same run.

(a) Load: `workspace.yaml` loads the python module `modelops.definitions`; a Dagster code server imports it and
builds the repository from its `Definitions`. Measured: wall time of a fresh subprocess
`python -c "import modelops.definitions as m; m.defs.get_repository_def()"` (interpreter start included), median of
`--load-runs` (5) after one untimed run (so the disk cache is warm for both). Baseline: a fresh subprocess
`python -c "import dagster"` the same way, interleaved with it, so value / baseline is what modelops adds on top of
Dagster itself. Target < 3 s. Also reported, without a target: the same processes' CPU time (user + system; on
a shared, busy machine wall time inflates while CPU time barely moves), `dagster definitions validate -w
workspace.yaml` (CLI start, workspace load, validation), and which heavy libraries a load imports (none is the
promise). The 1-minute load average at start and end is recorded with the result.
(b) Tick: the real `support_router_drift_sensor` of `build_definitions(Settings(home=tmp, data_dir=tmp))` with its
resources, on a real `DagsterInstance` (temporary DAGSTER_HOME with the project's dagster.yaml: SQLite storage),
evaluated as the daemon does (`build_sensor_context(...)` + `SensorDefinition.evaluate_tick`), in two states that
do no drift work: no traffic batch at all, and one 200-row batch already checked (cursor past it, its dynamic
partition registered). Median of `--ticks` (20) after a first tick that pays the sensor's lazy imports (reported
separately; the daemon's code server pays it once). Baseline: a trivial sensor on the same job that returns a
SkipReason, evaluated the same way on the same instance with the same resources. Target < 1 s per tick.

Usage: python -m bench.sensor_tick [--load-runs 5] [--ticks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.machine import Measurement

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
LOAD_CODE = "import modelops.definitions as m; m.defs.get_repository_def()"
BASELINE_CODE = "import dagster"
HEAVY = ("torch", "transformers", "peft", "evidently", "mlflow", "sklearn")
LOAD_TARGET_S, TICK_TARGET_S = 3.0, 1.0


# ---------------------------------------------------------------------------------------------- (a) load time


def _wall(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child and what it waited for) of one fresh subprocess."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _load_times(runs: int, validate_runs: int, scratch: Path) -> dict[str, Any]:
    """Fresh-subprocess wall times: the code location vs bare `import dagster`, interleaved, after a warm-up each."""
    env = {**os.environ, "DAGSTER_HOME": str(_dagster_home(scratch / "load-dagster")),
           "MODELOPS_HOME": str(scratch / "load-home"), "MODELOPS_DATA_DIR": str(scratch / "load-data")}
    load, bare = [sys.executable, "-c", LOAD_CODE], [sys.executable, "-c", BASELINE_CODE]
    _wall(load, env)
    _wall(bare, env)
    ours, baseline = [], []
    for _ in range(runs):
        ours.append(_wall(load, env))
        baseline.append(_wall(bare, env))
    validate = [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"]
    validate_times = [_wall(validate, env)[0] for _ in range(validate_runs)]
    probe = f"{LOAD_CODE}; import sys, json; print(json.dumps([n for n in {list(HEAVY)!r} if n in sys.modules]))"
    heavy = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
    return {"command": f"python -c {LOAD_CODE!r}", "baseline_command": f"python -c {BASELINE_CODE!r}",
            "runs": runs, "seconds": [round(t, 3) for t, _ in ours], "baseline_seconds": [round(t, 3) for t, _ in baseline],
            "median_seconds": round(statistics.median(t for t, _ in ours), 3),
            "baseline_median_seconds": round(statistics.median(t for t, _ in baseline), 3),
            "modelops_own_seconds": round(statistics.median(t for t, _ in ours)
                                          - statistics.median(t for t, _ in baseline), 3),
            "cpu_median_seconds": round(statistics.median(c for _, c in ours), 3),
            "baseline_cpu_median_seconds": round(statistics.median(c for _, c in baseline), 3),
            "validate_command": "dagster definitions validate -w workspace.yaml",
            "validate_seconds": [round(t, 3) for t in validate_times],
            "validate_median_seconds": round(statistics.median(validate_times), 3) if validate_times else None,
            "heavy_modules_imported": heavy}


# ---------------------------------------------------------------------------------------------- (b) tick time


def _dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml, as `modelops` commands prepare it."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", path / "dagster.yaml")
    return path


def _write_batch(production_dir: Path, rows: int) -> str:
    """One captured-traffic batch as the server writes it (the sensor never reads it here: it is already seen)."""
    from datetime import UTC, datetime

    import numpy as np

    from modelops.core.data.datagen import generate_corpus
    from modelops.core.monitoring.traffic import list_batches
    from modelops.core.monitoring.traffic_writer import TrafficRecord, TrafficWriter

    corpus = generate_corpus(rows, seed=7)
    rng = np.random.default_rng(7)
    records = [TrafficRecord(f"{i:032x}", datetime.now(UTC), text, label, float(rng.uniform(0.5, 1.0)),
                             "support-router", "1", 5.0, rng.normal(size=32).astype(np.float32).tolist())
               for i, (text, label) in enumerate(zip(corpus["text"], corpus["label"], strict=True))]
    writer = TrafficWriter(production_dir, max_rows=rows + 1)
    writer.append(records)
    writer.close()
    return list_batches(production_dir)[-1]


def _time_ticks(evaluate: Callable[[], Any], ticks: int) -> tuple[float, list[float]]:
    """(first tick, the next `ticks` ticks) in seconds."""
    started = time.perf_counter()
    evaluate()
    first = time.perf_counter() - started
    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        evaluate()
        times.append(time.perf_counter() - started)
    return first, times


def _tick_times(ticks: int, scratch: Path) -> dict[str, Any]:
    import dagster as dg

    from modelops.definitions import build_definitions
    from modelops.defs.customisation import customisation_defs
    from modelops.settings import Settings

    settings = Settings(home=scratch / "home", data_dir=scratch / "data")
    settings.production_dir.mkdir(parents=True, exist_ok=True)
    defs = build_definitions(settings)
    customisation = customisation_defs(settings.customisation)
    sensor = defs.resolve_sensor_def(customisation.drift_sensor.name)
    resources = dict(defs.resources or {})

    @dg.sensor(job=customisation.retrain_job, name="trivial_sensor")
    def trivial_sensor(context):  # type: ignore[no-untyped-def]  # unannotated: Dagster resolves annotations
        return dg.SkipReason("nothing to do")

    results: dict[str, Any] = {}
    with dg.DagsterInstance.from_config(str(_dagster_home(scratch / "dagster"))) as instance:

        def evaluator(definition: Any, cursor: str | None, expect: str) -> Callable[[], Any]:
            def evaluate() -> Any:
                context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
                data = definition.evaluate_tick(context)
                if expect not in (data.skip_message or ""):
                    raise AssertionError(f"{definition.name}: expected a skip with {expect!r}, got {data!r}")
                return data
            return evaluate

        baseline_first, baseline = _time_ticks(evaluator(trivial_sensor, None, "nothing to do"), ticks)
        empty_first, empty = _time_ticks(evaluator(sensor, None, "no new traffic batches"), ticks)
        batch = _write_batch(settings.production_dir, 200)
        instance.add_dynamic_partitions(customisation.keys.traffic_batches, [batch])
        cursor = json.dumps({"last_batch": batch, "retrains": [], "pending_drift": None, "labels_used": 0})
        seen_first, seen = _time_ticks(evaluator(sensor, cursor, "no new traffic batches"), ticks)
        _, baseline_again = _time_ticks(evaluator(trivial_sensor, None, "nothing to do"), ticks)
    for name, first, times in (("trivial_skip_sensor", baseline_first, baseline + baseline_again),
                               ("no_batches", empty_first, empty), ("one_batch_seen", seen_first, seen)):
        results[name] = {"ticks": len(times), "first_tick_seconds": round(first, 4),
                         "median_seconds": round(statistics.median(times), 5),
                         "max_seconds": round(max(times), 5)}
    results["instance"] = "DagsterInstance.from_config(temporary DAGSTER_HOME with the project's dagster.yaml)"
    return results


# ---------------------------------------------------------------------------------------------- main


def measurements(result: dict[str, Any]) -> list[Measurement]:
    """Both tick states and the load time bind; `dagster definitions validate` is reported."""
    ticks, load = result["ticks"], result["load"]
    base = ticks["trivial_skip_sensor"]["median_seconds"]
    rows = [Measurement(f"sensor_tick_{state}_seconds", ticks[state]["median_seconds"], "s", base,
                        f"< {TICK_TARGET_S:g} s per tick (median of {ticks[state]['ticks']})",
                        ticks[state]["median_seconds"] < TICK_TARGET_S)
            for state in ("no_batches", "one_batch_seen")]
    rows.append(Measurement("load_code_location_seconds", load["median_seconds"], "s",
                            load["baseline_median_seconds"],
                            f"< {LOAD_TARGET_S:g} s (fresh process, median of {load['runs']}); "
                            "baseline: bare import dagster", load["median_seconds"] < LOAD_TARGET_S))
    rows.append(Measurement("load_code_location_cpu_seconds", load["cpu_median_seconds"], "s",
                            load["baseline_cpu_median_seconds"],
                            "reported (user + system CPU of the same processes: less sensitive to a busy machine)",
                            None))
    if load["validate_median_seconds"] is not None:
        rows.append(Measurement("load_dagster_validate_seconds", load["validate_median_seconds"], "s",
                                load["baseline_median_seconds"], "reported (CLI: dagster definitions validate)",
                                None))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    from bench.machine import write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--load-runs", type=int, default=5)
    parser.add_argument("--validate-runs", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args(argv)
    load_average_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="modelops-sensor-tick-") as tmp:
        scratch = Path(tmp)
        load = _load_times(args.load_runs, args.validate_runs, scratch)
        ticks = _tick_times(args.ticks, scratch)
    result = {"load": load, "ticks": ticks,
              "load_average_1m": {"start": round(load_average_start, 2), "end": round(os.getloadavg()[0], 2)},
              "targets": {"load": f"< {LOAD_TARGET_S:g} s", "tick": f"< {TICK_TARGET_S:g} s"}}
    write_result("sensor_tick", result, measurements(result))


if __name__ == "__main__":
    main()
