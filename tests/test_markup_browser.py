"""Label names from a stranger's episode file in a real chromium: an image, a link, HTML and bare addresses
pointing at a server of the test's own make no request to it and no link on Teach or the Episode explorer,
and each name shows as typed. Needs chromium (skipped on a developer's machine without it, failed under CI)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from browser_harness import chromium, snapshot, streamlit_server, wait_until

from bench.serving import free_port
from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.uploads import prepare

pytestmark = pytest.mark.browser

RENDER_TIMEOUT_MS = 240_000
SETTLE_MS = 2000  # after a page is drawn, time for any image it asked for to be fetched


class Requests(BaseHTTPRequestHandler):
    """Counts every request made to it and answers with nothing."""

    paths = []

    def do_GET(self):
        Requests.paths.append(self.path)
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """A server on a free port that records the paths asked of it -> (port, list of paths)."""
    Requests.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Requests)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], Requests.paths
    server.shutdown()
    server.server_close()


def names_for(port):
    """Five label names of at most 40 characters that would fetch from or link to the listener."""
    where = f"http://127.0.0.1:{port}"
    return [f"![zq]({where}/image.png)", f"[zq]({where}/link)", f"{where}/bare", f"<img src={where}/tag.png>",
            "www.zq.org"]


def episode_file(path, names):
    """An episode of 10 steps, each label twice, named by `names`, saved at path."""
    alphabet = make_alphabet(3, seed=7)
    labels = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    images = torch.stack([prepare(render(alphabet[label % 3], drawer_seed=t)) for t, label in enumerate(labels)])
    InteractiveEpisode.from_sequence(images, labels, 5, class_names=names).save(path)


def links_and_images(page, port):
    """The addresses of the page's links and images that point at the listener or at zq.org."""
    return page.evaluate("""(port) => [...document.querySelectorAll('a[href], img[src]')]
        .map(e => e.getAttribute('href') || e.getAttribute('src'))
        .filter(a => a.includes(':' + port) || a.includes('zq.org'))""", port)


def test_names_that_point_at_a_server_fetch_nothing_and_link_nowhere(listener, tmp_path):
    port, requests = listener
    names = names_for(port)
    episode_file(tmp_path / "names.npz", names)
    with streamlit_server(tmp_path / "server.log") as (url, _), chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        page.goto(url)
        wait_until(page, "Teach the models")
        page.evaluate("(port) => fetch(`http://127.0.0.1:${port}/reachable`)", port)
        assert requests == ["/reachable"]  # the page can reach the listener: a name's fetch would show
        page.get_by_text("Episode file").click()
        page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(tmp_path / "names.npz")
        wait_until(page, "Loaded names.npz: 10 steps")
        wait_until(page, "By label")
        page.wait_for_timeout(SETTLE_MS)
        teach, found = page.inner_text("body"), links_and_images(page, port)
        page.get_by_role("link", name="Episode explorer").click()
        wait_until(page, "Step 1 of 10")
        wait_until(page, "Permutation")
        page.wait_for_timeout(SETTLE_MS)
        explorer = page.inner_text("body")
        snapshot(page, "explorer-names")
        found += links_and_images(page, port)
    assert requests == ["/reachable"]
    assert found == []
    for name in names:
        assert name in teach.replace("\u2060", "") and name in explorer.replace("\u2060", ""), name
