"""Collect every benchmark's measurements into bench/results/summary.json, print them, and regenerate the tables of
figures in bench/README.md from the JSON.

A table lives between `<!-- figures:<benchmark> -->` and `<!-- /figures -->` in the README: every summary row of
bench/results/<benchmark>.json, with its baseline, ratio, target, whether it was met, and the commit and machine it
was measured on. Benchmarks with more in their JSON than their rows also get detail tables between
`<!-- details:<benchmark> -->` and `<!-- /details -->` (bench/details.py). Nothing between the markers is written by
hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.details import RENDERERS
from bench.machine import RESULTS, ROW_LIBRARIES

README = Path(__file__).parent / "README.md"
TABLE = re.compile(r"(<!-- figures:(?P<name>[a-z0-9_]+) -->\n).*?(<!-- /figures -->)", re.DOTALL)
DETAILS = re.compile(r"(<!-- details:(?P<name>[a-z0-9_]+) -->\n).*?(<!-- /details -->)", re.DOTALL)


def build_summary(results_dir: Path = RESULTS) -> list[dict[str, object]]:
    """Every measurement row, named by its benchmark; a row written before rows carried their provenance takes the
    commit, tree state and versions its own run recorded (the file's `provenance`)."""
    rows: list[dict[str, object]] = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name == "summary.json":
            continue
        payload = json.loads(path.read_text())
        run = payload.get("provenance")
        for row in payload.get("measurements", []):
            if "commit" not in row and run:
                row = {**row, "commit": run["git_commit"], "tree_clean": run["git_tree_clean"],
                       "versions": {name: run["library_versions"].get(name) for name in ROW_LIBRARIES}}
            rows.append({**row, "benchmark": path.stem})
    return rows


def _number(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def figures_table(rows: list[dict[str, object]]) -> str:
    """The markdown table of one benchmark's rows."""
    lines = ["| measurement | value | unit | baseline | ratio | target | met | commit | machine |",
             "|---|---:|---|---:|---:|---|---|---|---|"]
    for row in rows:
        met = {None: "reported", True: "**met**", False: "**missed**"}[row["met"]]
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") is not None else "-"
        tree = {True: "", False: " (dirty)", None: " (tree not recorded)"}[row.get("tree_clean")]
        commit = str(row["commit"])[:8] + tree if row.get("commit") else "not recorded"
        lines.append(f"| `{row['name']}` | {_number(row['value'])} | {row['unit']} | {_number(row['baseline'])} | "
                     f"{ratio} | {row['target']} | {met} | {commit} | {row['machine']} |")
    return "\n".join(lines) + "\n"


def render_readme(text: str, rows: list[dict[str, object]], results_dir: Path = RESULTS) -> str:
    """`text` with every figures block replaced by the table of its benchmark's rows, and every details block by the
    detail tables rendered from its benchmark's JSON."""
    def table(match: re.Match[str]) -> str:
        mine = [row for row in rows if row["benchmark"] == match["name"]]
        body = figures_table(mine) if mine else f"(no results: run `python -m bench.{match['name']}`)\n"
        return match.group(1) + body + match.group(3)

    def details(match: re.Match[str]) -> str:
        path = results_dir / f"{match['name']}.json"
        body = RENDERERS[match["name"]](json.loads(path.read_text())) if path.is_file() else "(no results)\n"
        return match.group(1) + body + match.group(3)

    return DETAILS.sub(details, TABLE.sub(table, text))


def main() -> None:
    rows = build_summary()
    (RESULTS / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    README.write_text(render_readme(README.read_text(), rows))
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        status = "INFO" if row["met"] is None else "MET " if row["met"] else "MISS"
        value = f"{row['value']:>10.4g}" if row["value"] is not None else f"{'-':>10}"
        print(f"{status} {row['name']:<46} {value} {row['unit']:<10} ratio {ratio:<7} target: {row['target']}")


if __name__ == "__main__":
    main()
