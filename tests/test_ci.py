"""README's test command is what CI runs, and works as written: .ci/run takes the command from README.md
unchanged (then the same with -m slow), the default run leaves the slow tests out, and the relative data
folder README gives reaches tools started from another folder."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command():
    """The one-line command in the code block after README's "Run the tests" paragraph."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^Run the tests\b.*?^```bash\n(.*?)\n```", readme, flags=re.S | re.M)
    assert match, "README.md has no bash block after its 'Run the tests' paragraph"
    return match.group(1)


def test_ci_runs_readmes_test_command_unchanged_then_the_slow_tests():
    shown = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    command = readme_test_command()
    assert shown == [command, f"{command} -m slow"]


def test_the_default_run_leaves_out_the_slow_tests():
    """pytest.ini's -m "not slow" deselects the tests marked in the files (test_many_users.py) and by
    conftest.py (test_interrupt.py)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/test_many_users.py", "tests/test_interrupt.py"], cwd=ROOT, capture_output=True, text=True)
    assert re.search(r"no tests collected \(\d+ deselected\)", done.stdout), done.stdout[-2000:]


def test_a_relative_data_folder_reaches_tools_run_from_another_folder(data_dir, tmp_path):
    """README gives FLMN_DATA_DIR=../shared/data; conftest makes it absolute at start-up, so a tool run
    from a temporary folder (as test_publish.py runs flmn_core.training.train) finds the data there too."""
    assert "FLMN_DATA_DIR=../" in readme_test_command()  # the relative form a newcomer runs
    assert os.path.isabs(os.environ["FLMN_DATA_DIR"])
    found = subprocess.run([sys.executable, "-c", "import os, pathlib; "
                            "print(pathlib.Path(os.environ['FLMN_DATA_DIR'], 'omniglot').is_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert found == "True"
