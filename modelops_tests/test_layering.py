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


def _body_lines(fn: object) -> int:
    """Lines of a function's body after its docstring."""
    import inspect
    import textwrap

    node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    assert isinstance(node, ast.FunctionDef)
    statements = node.body[1:] if ast.get_docstring(node) else node.body
    return statements[-1].end_lineno - statements[0].lineno + 1


def test_asset_check_and_sensor_bodies_are_thin():
    """Each body reads its inputs, calls core and returns metadata: at most 30 lines after its docstring."""
    from modelops.defs.customisation import customisation_defs

    c = customisation_defs("support")
    bodies = {a.key.to_user_string(): a.op.compute_fn.decorated_fn for a in c.assets}
    bodies |= {check.check_key.name: check.node_def.compute_fn.decorated_fn for check in c.checks}
    bodies[c.drift_sensor.name] = c.drift_sensor._raw_fn
    lengths = {name: _body_lines(fn) for name, fn in bodies.items()}
    assert len(lengths) == len(c.assets) + len(c.checks) + 1
    assert {name: n for name, n in lengths.items() if n > 30} == {}
