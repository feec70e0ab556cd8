"""Architecture rules: the import direction between the layers; thin Dagster bodies; the code location loads fast
without heavy ML imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import modelops

PACKAGE = Path(modelops.__file__).parent
HEAVY = ("torch", "transformers", "peft", "evidently", "mlflow", "sklearn", "matplotlib", "pandas", "pyarrow")
# What each layer may import (besides itself and third-party libraries); see ARCHITECTURE.md.
ALLOWED = {
    "modelops.core": set(),
    "modelops.service": {"modelops.core"},
    "modelops.settings": {"modelops.core"},
    "modelops.defs": {"modelops.core", "modelops.settings"},
    "modelops.definitions": {"modelops.defs", "modelops.settings"},
    "modelops.app": {"modelops.core", "modelops.service", "modelops.settings", "modelops.defs", "modelops.definitions"},
}


def _layer(module: str) -> str:
    return next(layer for layer in sorted(ALLOWED, key=len, reverse=True) if module == layer or
                module.startswith(layer + "."))


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module]
    return names


def test_layers_import_only_downwards():
    """core imports no other modelops layer and no dagster; service and settings build on core alone; the Dagster
    definitions on core and settings; the application commands on anything."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        if module == "modelops":
            continue
        layer = _layer(module)
        for name in _imports(path):
            if name.split(".")[0] == "dagster" and layer in ("modelops.core", "modelops.service", "modelops.settings"):
                offenders.append(f"{module} imports {name}")
            elif name.startswith("modelops.") and _layer(name) != layer and _layer(name) not in ALLOWED[layer]:
                offenders.append(f"{module} imports {name}")
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
