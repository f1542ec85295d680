"""The Streamlit server as a person starts it, with the project's .streamlit/config.toml: it listens on this
computer only (127.0.0.1, not every network interface), and an uncaught error shows its type in the
browser but never its message, traceback or the server's paths (those go to the server's terminal)."""

import ipaddress
from pathlib import Path

import pytest
from browser_harness import RENDER_TIMEOUT_MS, chromium, need, streamlit_server

pytestmark = pytest.mark.browser

SECRET = "secret detail from /srv/private/settings.py"
FAILING_SCRIPT = f"""
import streamlit as st
st.write("before the error")
raise RuntimeError({SECRET!r})
"""
LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


def listening_addresses(port):
    """The local addresses ('127.0.0.1', '0.0.0.0', '::', ...) of the sockets listening on a TCP port, from
    /proc/net/tcp and tcp6 (Linux)."""
    addresses = []
    for table, size in (("tcp", 4), ("tcp6", 16)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == LISTEN and int(local_port, 16) == port:
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word of the address in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
                addresses.append(str(ipaddress.ip_address(words)))
    return addresses


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory):
    """A real server, started as the harness starts the app (no address given), running a script that fails."""
    need(Path("/proc/net/tcp").exists(), "no /proc/net/tcp to read the listening address from")
    folder = tmp_path_factory.mktemp("server")
    script = folder / "fails.py"
    script.write_text(FAILING_SCRIPT)
    log = folder / "server.log"
    with streamlit_server(log, script=script) as (url, _):
        yield url, log


def test_the_server_listens_on_this_computer_only(failing_server):
    url, _ = failing_server
    port = int(url.rsplit(":", 1)[1])
    assert listening_addresses(port) == ["127.0.0.1"]


def test_an_error_shows_its_type_but_no_details_in_the_browser(failing_server):
    url, log = failing_server
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        page.goto(url)
        page.locator('[data-testid="stException"]').wait_for()
        shown = page.inner_text("body")
    assert "before the error" in shown and "RuntimeError" in shown
    assert SECRET not in shown and "/srv/" not in shown and "fails.py" not in shown and "Traceback" not in shown
    assert SECRET in log.read_text(errors="replace")  # the details are in the server's terminal
