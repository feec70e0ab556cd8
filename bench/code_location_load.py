"""How long Dagster waits for the code location: `import modelops.definitions` in a fresh interpreter.

The webserver, the daemon and every run worker import the code location before they do anything, so it must stay
light. Baseline: `import dagster` alone in a fresh interpreter (the floor any Dagster code location pays); measured
alternately with the code location, REPETITIONS times each after one warm-up of each (file-system caches). Target:
under 3 s, with none of torch, transformers, peft, evidently, mlflow, pandas imported.

    python -m bench.code_location_load
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

REPETITIONS = 7
TARGET_SECONDS = 3.0
HEAVY = ("torch", "transformers", "peft", "evidently", "mlflow", "sklearn", "pandas", "pyarrow")
PROGRAMS = {
    "code_location": "import modelops.definitions",
    "dagster_alone": "import dagster",
}


def _load(statement: str) -> tuple[float, list[str]]:
    """Seconds `statement` takes in a fresh interpreter (timed inside it), and the heavy modules it left loaded."""
    script = (f"import json, sys, time; t = time.perf_counter(); {statement}; "
              f"print(json.dumps([time.perf_counter() - t, [m for m in {HEAVY!r} if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    seconds, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, heavy


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> None:
    from bench.machine import Measurement, provenance, write_result

    for statement in PROGRAMS.values():
        _load(statement)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    heavy: set[str] = set()
    for repetition in range(REPETITIONS):
        for name in PROGRAMS if repetition % 2 == 0 else list(PROGRAMS)[::-1]:
            took, loaded = _load(PROGRAMS[name])
            seconds[name].append(took)
            heavy |= set(loaded) if name == "code_location" else set()
    ours, floor = _spread(seconds["code_location"]), _spread(seconds["dagster_alone"])
    write_result("code_location_load", {
        "provenance": provenance(["modelops/definitions.py", "modelops/defs/customisation.py"]),
        "repetitions": REPETITIONS, "code_location_seconds": ours, "dagster_alone_seconds": floor,
        "heavy_modules_loaded": sorted(heavy), "target": f"< {TARGET_SECONDS} s, no heavy ML library imported",
        "baseline": "`import dagster` alone in a fresh interpreter, alternated with the code location"},
        [Measurement("code_location_load_seconds", ours["median"], "s", floor["median"],
                     f"< {TARGET_SECONDS} s and no heavy ML import (median of {REPETITIONS})",
                     ours["median"] < TARGET_SECONDS and not heavy)])


if __name__ == "__main__":
    main()
