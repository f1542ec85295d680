"""A Streamlit server's readiness, shared by the benches and the browser tests (tests/browser_harness.py)."""

import time
import urllib.request


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
