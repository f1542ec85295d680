"""Nothing in the project is loaded with full unpickling: unpickling a file can run any code its author
chose, so checkpoints go through torch.load(..., weights_only=True) (flmn_core.load_checkpoint) and
episode files through numpy without pickle.

Every .py file of the project is read as a syntax tree (so that text in strings and comments does not
count) and refused when it calls torch.load without a literal weights_only=True (or with **kwargs or a
pickle_module), calls pickle's load, loads or Unpickler, passes allow_pickle anything but False, calls
pandas' read_pickle, or imports dill, joblib, cloudpickle, shelve or marshal. Importing pickle itself is
allowed: flmn_core.model.checkpoint catches pickle.UnpicklingError. A test that crafts a dangerous file on
purpose is listed in ALLOWED with the reason.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {"venv", "__pycache__", "build", "dist", "node_modules", "site-packages", "test-artifacts"}
UNSAFE_MODULES = {"dill", "joblib", "cloudpickle", "shelve", "marshal"}  # each loads pickled or code objects
PICKLE_MODULES = {"pickle", "_pickle", "cPickle"}
PICKLE_LOADERS = {"load", "loads", "Unpickler"}
# (file, function) -> why it unpickles on purpose. Each entry must still be used (a stale one fails).
ALLOWED = {
    ("tests/test_checkpoint.py", "test_pickle_that_would_run_code_is_refused"):
        "loads the crafted checkpoint once with weights_only=False, to prove that its payload really runs",
}


@dataclass(frozen=True)
class Finding:
    """One unsafe load: where, in which function, and what."""

    path: str
    line: int
    function: str
    what: str

    def __str__(self):
        return f"{self.path}:{self.line} ({self.function}): {self.what}"


def project_files(root=ROOT):
    """Every .py file of the project, outside hidden folders (.git, .venv, .hypothesis) and environments."""
    def skipped(path):
        return any(part.startswith(".") or part in SKIPPED_DIRS for part in path.relative_to(root).parts[:-1])
    return sorted(path for path in root.rglob("*.py") if not skipped(path))


class UnsafeLoads(ast.NodeVisitor):
    """Collects Findings in one module; `safe_torch_loads` counts the torch.load calls that pass."""

    def __init__(self, path, tree):
        self.path, self.findings, self.safe_torch_loads = path, [], 0
        self.functions = ["<module>"]  # the enclosing function of each node visited, innermost last
        # The local names of torch, torch.load, pickle and pickle's loaders in this module.
        self.torch, self.torch_load, self.pickle, self.pickle_loaders = {"torch"}, set(), set(), set()
        for node in ast.walk(tree):  # the names each module is imported under, anywhere in the file
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.track(alias.name, None, alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.track(node.module, alias.name, alias.asname or alias.name)

    def track(self, module, name, bound):
        """Remember the local name `bound` given to torch, torch.load, pickle or one of pickle's loaders."""
        if module == "torch" and name is None:
            self.torch.add(bound)
        elif module in ("torch", "torch.serialization") and name == "load":
            self.torch_load.add(bound)
        elif module in PICKLE_MODULES and name is None:
            self.pickle.add(bound)
        elif module in PICKLE_MODULES and name in PICKLE_LOADERS:
            self.pickle_loaders.add(bound)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in UNSAFE_MODULES:
                self.report(node, f"imports {alias.name}, which loads pickled or code objects")

    def visit_ImportFrom(self, node):
        if node.module and node.module.split(".")[0] in UNSAFE_MODULES:
            self.report(node, f"imports from {node.module}, which loads pickled or code objects")

    def report(self, node, what):
        self.findings.append(Finding(self.path, node.lineno, self.functions[-1], what))

    def visit_FunctionDef(self, node):
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        func = node.func
        keywords = {k.arg: k.value for k in node.keywords}
        if self.is_torch_load(func):
            weights_only = keywords.get("weights_only")
            if None in keywords or "pickle_module" in keywords:
                self.report(node, "torch.load with **kwargs or a pickle_module: weights_only=True cannot be seen")
            elif not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                self.report(node, "torch.load without weights_only=True unpickles anything")
            else:
                self.safe_torch_loads += 1
        elif self.is_pickle_load(func):
            self.report(node, f"{ast.unparse(func)} unpickles anything")
        elif isinstance(func, ast.Attribute) and func.attr == "read_pickle":
            self.report(node, f"{ast.unparse(func)} unpickles anything")
        allow = keywords.get("allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            self.report(node, f"allow_pickle={ast.unparse(allow)}: numpy would unpickle object arrays")
        self.generic_visit(node)

    def is_torch_load(self, func):
        if isinstance(func, ast.Name):
            return func.id in self.torch_load
        return isinstance(func, ast.Attribute) and func.attr == "load" and \
            ast.unparse(func.value) in self.torch | {f"{t}.serialization" for t in self.torch}

    def is_pickle_load(self, func):
        if isinstance(func, ast.Name):
            return func.id in self.pickle_loaders
        return isinstance(func, ast.Attribute) and func.attr in PICKLE_LOADERS and \
            ast.unparse(func.value) in self.pickle


def scan(path, root=ROOT):
    """-> UnsafeLoads of one file (its findings and its count of safe torch.load calls)."""
    relative = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    visitor = UnsafeLoads(relative, tree)
    visitor.visit(tree)
    return visitor


def test_no_project_file_loads_with_full_unpickling():
    files = project_files()
    scanned = {path.relative_to(ROOT).as_posix(): scan(path) for path in files}
    assert {"flmn_core/model/checkpoint.py", "flmn_core/interactive/episode.py", "app.py", "app_shared/frame.py",
            "tests/test_no_unpickling.py"} <= set(scanned), "the scan missed project files"
    assert any(name.startswith("app_pages/") for name in scanned) and any(name.startswith("bench/") for name in scanned)
    # The scanner sees the one real checkpoint load, and finds it safe.
    assert scanned["flmn_core/model/checkpoint.py"].safe_torch_loads >= 1
    findings = [f for visitor in scanned.values() for f in visitor.findings]
    unexpected = [str(f) for f in findings if (f.path, f.function) not in ALLOWED]
    assert not unexpected, "full unpickling:\n" + "\n".join(unexpected)
    stale = set(ALLOWED) - {(f.path, f.function) for f in findings}
    assert not stale, f"ALLOWED lists functions that no longer unpickle: {sorted(stale)}"
    print(f"\n{len(files)} files scanned; {sum(v.safe_torch_loads for v in scanned.values())} torch.load calls, "
          f"all weights_only=True; {len(findings)} deliberate unsafe load(s) in tests (ALLOWED)")


UNSAFE_EXAMPLES = [
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "import torch\ntorch.load(path, weights_only=flag)",
    "import torch\ntorch.load(path, **options)",
    "import torch as th\nth.load(path, map_location='cpu')",
    "from torch import load\nload(path)",
    "from torch.serialization import load as read\nread(path)",
    "import torch\ntorch.serialization.load(path)",
    "import pickle\npickle.load(f)",
    "import pickle as p\np.loads(data)",
    "from pickle import loads\nloads(data)",
    "import pickle\npickle.Unpickler(f).load()",
    "import numpy as np\nnp.load(f, allow_pickle=True)",
    "import numpy\nnumpy.load(f, allow_pickle=choice)",
    "import pandas as pd\npd.read_pickle(path)",
    "import dill",
    "import joblib\njoblib.load(path)",
    "from joblib import load",
    "import cloudpickle",
    "import shelve",
    "import marshal",
]
SAFE_EXAMPLES = [
    "import torch\ntorch.load(path, map_location='cpu', weights_only=True)",
    "import torch\ntorch.save(state, path)",
    "import numpy as np\nnp.load(f, allow_pickle=False)\nnp.load(f)",
    "import pickle\ntry:\n    pass\nexcept pickle.UnpicklingError:\n    pass",
    "text = 'torch.load(path) and pickle.loads(data) in a string'  # or import dill in a comment",
]


@pytest.mark.parametrize("source", UNSAFE_EXAMPLES)
def test_the_scan_finds_each_unsafe_load_in_a_file(tmp_path, source):
    (tmp_path / "pkg").mkdir()
    path = tmp_path / "pkg" / "module.py"
    body = "".join(f"    {line}\n" for line in source.splitlines())
    path.write_text("def read(path, f, data, flag, options, choice):\n" + body)
    assert project_files(tmp_path) == [path]
    findings = scan(path, tmp_path).findings
    assert findings and all(f.path == "pkg/module.py" and f.function == "read" for f in findings), findings


@pytest.mark.parametrize("source", SAFE_EXAMPLES)
def test_the_scan_passes_safe_loads(tmp_path, source):
    path = tmp_path / "module.py"
    path.write_text(source + "\n")
    assert scan(path, tmp_path).findings == []


def test_hidden_folders_and_environments_are_not_scanned(tmp_path):
    for folder in (".venv/lib", "venv/lib", "pkg/__pycache__", ".git/hooks"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "vendored.py").write_text("import pickle\npickle.loads(b'')\n")
    (tmp_path / "pkg" / "mine.py").write_text("import dill\n")
    assert [p.relative_to(tmp_path).as_posix() for p in project_files(tmp_path)] == ["pkg/mine.py"]
