"""The shape of flmn_core stays as its folders show it: each layer imports only the layers below it.

    model  ->  data  ->  training  ->  results
                                   ->  interactive      (results and interactive never import each other)

flmn_core/files.py and flmn_core/plotting.py are the foundation every layer may use (they import nothing of
flmn_core); flmn_core/__init__.py, __main__.py and cli.py are the front door above every layer. Nothing in
flmn_core imports streamlit or the app. The imports are read from the source (ast), so an import inside a
function counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flmn_core"
# layer -> the layers it may import (besides itself and the foundation)
ALLOWED = {
    "model": set(),
    "data": {"model"},
    "training": {"model", "data"},
    "results": {"model", "data", "training"},
    "interactive": {"model", "data", "training"},
}
FOUNDATION = {"files", "plotting"}
FRONT = {"__init__", "__main__", "cli"}
APP = ("streamlit", "app", "app_shared", "app_pages")


def imported_modules(path, root=ROOT):
    """Every module a source file under root imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return found


def layer_of(module):
    """flmn_core.<layer>.<module> -> layer; flmn_core.<file> -> file's name; anything else -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "flmn_core" and len(parts) > 1 else None


def violations(path, root=ROOT):
    """The imports of one file of root/flmn_core that break the layering, as readable lines."""
    relative = path.relative_to(root / "flmn_core")
    own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    bad = []
    for module in imported_modules(path, root):
        if module.split(".")[0] in APP:
            bad.append(f"{relative} imports {module}: flmn_core never imports streamlit or the app")
            continue
        target = layer_of(module)
        if target is None or target == own or target in FOUNDATION or own in FRONT:
            continue
        if own in FOUNDATION:
            bad.append(f"{relative} imports {module}: the foundation imports nothing of flmn_core")
        elif target in FRONT or target not in ALLOWED[own]:
            bad.append(f"{relative} ({own}) imports {module} ({target}): {own} may import only "
                       f"{', '.join(sorted(ALLOWED[own] | FOUNDATION)) or 'the foundation'}")
    return bad


def test_every_module_belongs_to_a_layer_or_the_front_or_the_foundation():
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        name = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        assert name in ALLOWED or name in FOUNDATION | FRONT, f"{relative} is in no layer"


def test_no_import_points_up_or_sideways():
    bad = [line for path in sorted(PACKAGE.rglob("*.py")) for line in violations(path)]
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


@pytest.mark.parametrize("source, message", [
    ("from flmn_core.training.train import main\n", "model/fake.py (model) imports flmn_core.training.train (training)"),
    ("import flmn_core.results.report\n", "imports flmn_core.results.report (results)"),
    ("from flmn_core.interactive import figures\n", "(interactive)"),
    ("def late():\n    import streamlit\n", "never imports streamlit"),
])
def test_an_import_that_points_up_is_found(tmp_path, source, message):
    """The check fails when a model module imports upward (a module written into a copy of the layout)."""
    fake = tmp_path / "flmn_core" / "model" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    found = violations(fake, root=tmp_path)
    assert any(message in line for line in found), found


def test_results_and_interactive_never_import_each_other():
    for source, other in (("results", "interactive"), ("interactive", "results")):
        assert other not in ALLOWED[source]
