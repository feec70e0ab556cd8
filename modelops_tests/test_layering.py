"""Architecture rules: core never imports dagster; the code location loads fast without heavy ML imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import modelops

CORE = Path(modelops.__file__).parent / "core"
HEAVY = ("torch", "transformers", "peft", "evidently", "mlflow", "sklearn", "matplotlib", "pandas", "pyarrow")


def test_core_never_imports_dagster():
    offenders = []
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "dagster"]
    assert offenders == []


def test_code_location_imports_no_heavy_ml_library():
    script = ("import json, sys, time; t = time.perf_counter(); import modelops.definitions as d; "
              "print(json.dumps({'seconds': time.perf_counter() - t, "
              f"'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    print(f"code location load: {result['seconds']:.2f}s")
