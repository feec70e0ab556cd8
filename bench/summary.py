"""Collect every benchmark's measurements into bench/results/summary.json and print a table of the targets."""

from __future__ import annotations

import json
from pathlib import Path

from bench.machine import RESULTS


def build_summary(results_dir: Path = RESULTS) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name == "summary.json":
            continue
        rows.extend(json.loads(path.read_text()).get("measurements", []))
    return rows


def main() -> None:
    rows = build_summary()
    (RESULTS / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        status = "INFO" if row["met"] is None else "MET " if row["met"] else "MISS"
        value = f"{row['value']:>10.4g}" if row["value"] is not None else f"{'-':>10}"
        print(f"{status} {row['name']:<46} {value} {row['unit']:<10} ratio {ratio:<7} target: {row['target']}")


if __name__ == "__main__":
    main()
