"""One way to start the app for the benches and the browser tests: a real `streamlit run` on a free port, and
the chromium they drive it with.

    with streamlit_server(folder, log_path) as (url, process):   # process.pid: the server, e.g. for its memory
        ...

It runs from the app's folder, so its .streamlit/config.toml applies (the address it listens on comes from
there, as for a person running the app; tests/test_server.py checks it), with the settings a test needs
on top (TOOLCHAIN.md: headless, no file watcher, no usage statistics). Stops only its own process.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 300  # a guard against a hang, not a speed limit: a loaded 2-core machine takes many seconds
# Debian's chromium (Playwright cannot download browsers on these machines), and how the benches and the
# browser tests launch it.
CHROMIUM = Path(os.environ.get("FLMN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


class ServerError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url, process, seconds):
    """Poll the server's health endpoint -> True once it answers ok, False if `process` exits or `seconds`
    pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return True
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.2)


@contextmanager
def streamlit_server(folder, log_path, env=None, script="app.py", seconds=START_SECONDS):
    """`streamlit run script` in folder on a free port, its output in log_path -> (url, process). env: extra
    environment variables for the server (e.g. FLMN_CHECKPOINT_DIR). Raises ServerError when it does not
    start."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_health(url, process, seconds):
            raise ServerError(f"streamlit did not start in {folder}:\n{Path(log_path).read_text(errors='replace')[-2000:]}")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
