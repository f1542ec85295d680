"""Shared fixtures: the real data folder, Omniglot loaded once per session, and a private cache folder;
and what every run needs: folders made absolute, and the long tests marked slow.

The data comes from FLMN_DATA_DIR (a folder with omniglot/ and mnist/, as ../shared/data). Without it the
tests that need real data are skipped on a developer's machine, but fail under CI, where skipping them
would hide that the suite did not test the real data at all.

Tests over about 20 s on the project's 2-core machine (`pytest --durations=40`) are marked slow:
pytest.ini leaves them out of the default run, and CI (.ci/run) runs them with `-m slow`.
"""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

import flmn_core
from flmn_core.data.sources import MNIST_FILES, OMNIGLOT_SETS  # the files data.py reads

# Two cores shared with training runs: one thread per test process keeps the suite from oversubscribing them.
torch.set_num_threads(1)

# Hypothesis gives each example a 200 ms deadline unless told otherwise: a wall-clock limit, which a machine
# shared with training runs breaks. Speed is measured by bench/; no property test has a deadline.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

# Folders the project reads from the environment. README's test command gives FLMN_DATA_DIR=../shared/data,
# relative to where pytest starts; tests that run a tool from a temporary folder (test_publish.py,
# test_train.py) would resolve it from there and find nothing, so each is made absolute once, at start-up,
# before any test or subprocess reads it.
FOLDER_VARIABLES = ("FLMN_DATA_DIR", "FLMN_CACHE_DIR", "FLMN_CHECKPOINT_DIR")

# Slow tests marked here rather than in their own files, with why and how long each took on the 2-core
# machine. Marked at collection (see pytest_collection_modifyitems); a file or test listed here that no
# longer exists stops the run, so that a rename cannot quietly bring a slow test back into the default run.
SLOW_TESTS = {
    "tests/test_interrupt.py": "SIGKILL, SIGTERM, Ctrl-C and NaN stops of real training processes (65 s in all)",
    "tests/test_train.py::test_flmn_learns_to_bind_labels_in_memory": "trains FLMN until it binds labels (110 s)",
    "tests/test_train.py::test_resume_continues_from_the_saved_episode": "trains a run split in two and a straight one (39 s)",
    "tests/test_train.py::test_resume_gives_the_same_weights_as_an_uninterrupted_run": "the same two runs",
    "tests/test_run_folder.py::test_resume_while_the_run_goes_is_refused_until_it_stops":
        "a run, a refused resume, a stop and a resume (45-80 s)",
}


def pytest_configure(config):
    """Make the folder variables absolute, relative to where pytest was started (see FOLDER_VARIABLES)."""
    for name in FOLDER_VARIABLES:
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(os.environ[name])


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook, which deselects by marker (-m "not slow")
def pytest_collection_modifyitems(config, items):
    """Mark the tests SLOW_TESTS lists slow; stop the run if one of them no longer exists."""
    for key in SLOW_TESTS:
        path, _, name = key.partition("::")
        collected = [item for item in items if item.nodeid.partition("::")[0] == path]
        if not collected and not Path(config.rootpath, path).is_file():
            raise pytest.UsageError(f"tests/conftest.py SLOW_TESTS lists {path}, which no longer exists")
        if name and collected and not hasattr(collected[0].module, name):
            raise pytest.UsageError(f"tests/conftest.py SLOW_TESTS lists {key}, which no longer exists")
        for item in collected:
            if not name or item.originalname == name:
                item.add_marker(pytest.mark.slow)


def missing_data_files(folder):
    """The expected data files (relative paths) that are absent from folder; each Omniglot set may also be
    the extracted folder of the same name."""
    missing = [f"omniglot/{name}.zip" for name in OMNIGLOT_SETS
               if not (folder / "omniglot" / f"{name}.zip").is_file() and not (folder / "omniglot" / name).is_dir()]
    missing += [f"mnist/{name}" for name in MNIST_FILES if not (folder / "mnist" / name).is_file()]
    return missing


@pytest.fixture(scope="session")
def data_dir():
    """Path(FLMN_DATA_DIR), holding the official Omniglot and MNIST files; skip without it, fail under CI."""
    value = os.environ.get("FLMN_DATA_DIR")
    if not value:
        problem = "FLMN_DATA_DIR is not set"
    else:
        missing = missing_data_files(Path(value))
        problem = f"FLMN_DATA_DIR={value} lacks {', '.join(missing)}" if missing else None
    if problem is None:
        return Path(value)
    if os.environ.get("CI"):
        pytest.fail(f"{problem}. CI must test the real data: point FLMN_DATA_DIR at a folder with "
                    "omniglot/images_{background,evaluation}.zip and mnist/t10k-*-ubyte.gz.", pytrace=False)
    pytest.skip(f"{problem}; these tests need the real Omniglot/MNIST files (see README)")


@pytest.fixture(scope="session", autouse=True)
def flmn_cache_dir(tmp_path_factory):
    """The cache folder of preprocessed arrays: FLMN_CACHE_DIR if set, else a fresh folder for this session,
    so that tests never write into the user's own cache (and a stale cache there cannot hide a bug)."""
    if os.environ.get("FLMN_CACHE_DIR"):
        yield Path(os.environ["FLMN_CACHE_DIR"])
        return
    path = tmp_path_factory.mktemp("flmn-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLMN_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def omniglot(data_dir, flmn_cache_dir):
    """All of Omniglot, preprocessed (flmn_core.load_omniglot), loaded once; never downloads in tests."""
    return flmn_core.load_omniglot(data_dir, download=False)
