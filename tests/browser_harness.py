"""What the browser tests share: a real `streamlit run app.py` on a free port, Debian's chromium driven by
Playwright, and ways to wait for and read what the page shows.

    with streamlit_server(log_path) as (url, process):    # process.pid: the server, e.g. for its memory
        with chromium() as browser:
            page = browser.new_page(...); page.goto(url); wait_until(page, "Teach the models")

Chromium comes from Debian (/usr/bin/chromium, `apt-get install chromium`): Playwright cannot download
browsers on these machines. Without it, or without playwright, `need` skips a test on a developer's
machine and fails it under CI, which must run the browser tests.
"""

import base64
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bench import serving
from bench.serving import CHROMIUM, CHROMIUM_ARGS

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the tests then skip, or fail under CI
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
# How long to wait for a server to start or a page to render before calling it hung. A guard, not a speed
# limit: alone on the machine a render takes 1-6 s, but the tests share 2 cores with training runs, and on
# such a loaded machine 60 s ran out for 8 sessions at once. Speed is measured by bench/app_latency.py.
HANG_SECONDS = 300
RENDER_TIMEOUT_MS = HANG_SECONDS * 1000
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def need(condition, why):
    """Skip when something a test needs is missing; fail instead under CI, which must run it."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run the browser test)", pytrace=False)
        pytest.skip(why)


@contextmanager
def streamlit_server(log_path, env=None, script=ROOT / "app.py"):
    """A real `streamlit run app.py` (or another script) on a free port, from the project's folder
    (bench.serving, which the benches use too) -> (url, process); fails the test with the server's log when
    it does not start. env: extra environment variables for the server (e.g. FLMN_CHECKPOINT_DIR)."""
    try:
        with serving.streamlit_server(ROOT, log_path, env=env, script=script, seconds=HANG_SECONDS) as started:
            yield started
    except serving.ServerError as error:
        pytest.fail(str(error))


@contextmanager
def chromium():
    """A headless Debian chromium under Playwright -> Browser; skipped (failed under CI) when missing."""
    need(sync_playwright is not None, "playwright is not installed (pip install -r requirements-dev.txt)")
    need(CHROMIUM.is_file(), f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_until(page, text):
    """Wait until the script has finished and the page shows text (a rerun's visible result), never a
    fixed sleep: right after an action the state may still read notRunning from the previous run."""
    page.wait_for_function(
        """([idle, text]) => document.querySelector(idle) !== null && document.body.innerText.includes(text)""",
        arg=[IDLE, text])


def figures(page):
    """{title: the z (or y) values of its first trace, as JSON} of every Plotly chart on the page (the
    theme wraps titles in <b>, which is dropped)."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]
        .filter(p => p.layout && p.data && p.data.length)
        .map(p => [((p.layout.title && p.layout.title.text) || '').replace(/<[^>]*>/g, ''),
                     JSON.stringify(p.data[0].z || p.data[0].y)]))""")


def show_memory_views(page, views, titles):
    """Click the Teach page's Show buttons of these views (memory.VIEWS) and wait until a chart of each
    title is drawn (titles without the theme's tags)."""
    for view in views:
        page.locator(".st-key-teach-views button", has_text=view).click()
    page.wait_for_function("""(titles) => {
        const shown = [...document.querySelectorAll('.js-plotly-plot')]
            .map(p => ((p.layout && p.layout.title && p.layout.title.text) || '').replace(/<[^>]*>/g, ''));
        return titles.every(title => shown.includes(title));
    }""", arg=list(titles))


def snapshot(page, name):
    """A screenshot of the whole page in test-artifacts/. Streamlit scrolls its main section, not the
    document, so the viewport is made as tall as the content for the shot, then restored."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], section')]
        .map(e => e.scrollHeight), document.body.scrollHeight)""")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 12000)})
    page.screenshot(path=ARTIFACTS / f"{name}.png")
    page.set_viewport_size(size)


def rss_kib(pid):
    """The resident memory of a process in KiB, from /proc/<pid>/status (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


def plotly_arrays(page):
    """{title: [values of each trace: its z, else its y, as a numpy array]} of every Plotly chart on the
    page; an untitled chart (the Teach page's probabilities) under "". Plotly sends float32 arrays as
    base64 ("bdata"), decoded here bit for bit, so they compare exactly with arrays computed in the test."""
    charts = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]
        .filter(p => p.layout && p.data && p.data.length)
        .map(p => [((p.layout.title && p.layout.title.text) || '').replace(/<[^>]*>/g, ''),
                   p.data.map(t => { const v = t.z || t.y;
                       if (v.bdata) return {dtype: v.dtype, bdata: v.bdata, shape: String(v.shape || '')};
                       return {values: Array.from(v, r => typeof r === 'number' ? r : Array.from(r))}; })]))""")
    return {title: [_trace_array(trace) for trace in traces] for title, traces in charts.items()}


def _trace_array(trace):
    """One trace's values from plotly_arrays' JavaScript -> numpy array."""
    if "values" in trace:
        return np.asarray(trace["values"], dtype=np.float64)
    array = np.frombuffer(base64.b64decode(trace["bdata"]), dtype=np.dtype(trace["dtype"]))
    return array.reshape([int(n) for n in trace["shape"].split(",")]) if "," in trace["shape"] else array
