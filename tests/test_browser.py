"""End to end in a real browser: `streamlit run app.py` on a free port, Debian's chromium driven by
Playwright, characters drawn with the mouse along real people's pen trajectories (Omniglot's stroke
files), labelled, and every page visited. Screenshots go to test-artifacts/ for a person to look at.

Needs chromium (/usr/bin/chromium, `apt-get install chromium`) and the Omniglot stroke files under
FLMN_DATA_DIR; without them the test is skipped on a developer's machine and fails under CI.
"""

import os
import zipfile
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # browser_harness.chromium then skips, or fails under CI
    expect = None

from browser_harness import (
    RENDER_TIMEOUT_MS,
    chromium,
    figures,
    need,
    show_memory_views,
    snapshot,
    streamlit_server,
    wait_until,
)

from flmn_core.data.normalise import OMNIGLOT_SIZE
from flmn_core.data.strokes import CANVAS_SIDE, PEN_READY_MS
from flmn_core.interactive import read_view
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.model import zoo

FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name  # what the app shows first
MEMORY_TITLES = ("FLMN feature memory", "FLMN label memory", "MANN memory", "FLMN addressing", "MANN addressing")

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # about a minute: a server, chromium, four drawings

STROKES_ZIP = "omniglot-strokes/strokes_background_small1.zip"
# Drawings to make: (character folder, drawer file suffix, true label 1..C). Two characters, each drawn by
# two people, so that the 3rd and 4th drawings repeat a label the models have been given.
DRAWINGS = (("Korean/character01", "_01", 1), ("Greek/character05", "_03", 2),
            ("Korean/character01", "_07", 1), ("Greek/character05", "_12", 2))


def read_strokes(archive, folder, suffix):
    """The strokes of one drawing: [[(x, y) in image pixels of the 105 x 105 frame, ...], ...]."""
    name = next(n for n in archive.namelist() if n.startswith(f"strokes_background_small1/{folder}/")
                and n.endswith(f"{suffix}.txt"))
    strokes, points = [], []
    for line in archive.read(name).decode().splitlines():
        if line.strip() in ("START", "BREAK"):
            if points:
                strokes.append(points)
            points = []
        elif line.strip():
            x, y, _ = (float(v) for v in line.split(","))
            points.append((x, -y))  # motor space to image space: y -> -y
    if points:
        strokes.append(points)
    return strokes


@pytest.fixture(scope="module")
def drawings():
    data = os.environ.get("FLMN_DATA_DIR")
    path = Path(data or "") / STROKES_ZIP
    need(data and path.is_file(), f"the Omniglot stroke files ({STROKES_ZIP} under FLMN_DATA_DIR) are missing")
    with zipfile.ZipFile(path) as archive:
        return [(read_strokes(archive, folder, suffix), label) for folder, suffix, label in DRAWINGS]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `streamlit run app.py` on a free port (browser_harness.streamlit_server)."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit") / "server.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(server):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        page.goto(server)
        wait_until(page, "Teach the models")
        yield page


def draw(page, strokes):
    """Draw strokes (105 x 105 image coordinates) with the mouse on the canvas, waiting for the rerun
    that each stroke's mouse-up starts."""
    page.wait_for_timeout(PEN_READY_MS)  # a fresh canvas takes up its pen a moment after it appears
    canvas = page.locator("canvas.upper-canvas")
    box = canvas.bounding_box()
    scale = CANVAS_SIDE / OMNIGLOT_SIZE
    for count, stroke in enumerate(strokes, start=1):
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.up()
        wait_until(page, f"From {count} stroke{'s' * (count != 1)} on the canvas")


def drawn_read(page, model):
    """The read view of `model` ("FLMN" or "MANN") as the browser drew it: the pixels from its grid line at
    0 to the one at 1, and each by-row bar's weight, drawn height and name."""
    return page.evaluate("""(model) => {
        const view = document.querySelector(`figure.flmn-read[data-title="${model} read"]`);
        const panel = view && view.querySelector('.flmn-read-panel[data-panel="row"]');
        if (!panel) return null;
        const top = at => panel.querySelector(`.flmn-read-grid[data-at="${at}"]`).getBoundingClientRect().top;
        return {unit: top("0") - top("1"), bars: [...panel.querySelectorAll(".flmn-read-bar")].map(bar => ({
            weight: Number(bar.dataset.weight), name: bar.querySelector(".flmn-read-name").innerText,
            height: bar.querySelector(".flmn-read-fill").getBoundingClientRect().height}))};
    }""", model)


def drawn_reads(page):
    """The titles of the read views on the page, in order."""
    return page.evaluate("() => [...document.querySelectorAll('figure.flmn-read')].map(f => f.dataset.title)")


def test_draw_label_and_explore_in_a_real_browser(page, drawings):
    memories = []
    for step, (strokes, label) in enumerate(drawings, start=1):
        wait_until(page, f"Step {step}: draw one character")
        if step == len(drawings):  # the last one white on black: the models must see the same kind of input
            black_on_white = page.locator("canvas.upper-canvas").element_handle()
            page.get_by_role("radio", name="White on black").check(force=True)
            black_on_white.wait_for_element_state("hidden")  # the rerun replaced the canvas
            wait_until(page, "Draw a character on the canvas")
        draw(page, strokes)
        body = page.inner_text("body")
        assert f"{FLMN} predicts" in body and f"{MANN} predicts" in body
        if step == 1:  # the page shows the reads; a person adds the heatmaps, which then stay chosen
            assert drawn_reads(page) == ["FLMN read", "MANN read"]
            assert not [t for t in figures(page) if t.startswith(("FLMN", "MANN"))]  # no heatmap yet
            show_memory_views(page, ("Memories", "Addressing"), MEMORY_TITLES)
            wait_until(page, f"{FLMN} predicts")
        shown = figures(page)
        assert set(MEMORY_TITLES) <= set(shown)
        memories.append(shown["FLMN feature memory"] + shown["MANN memory"])
        snapshot(page, f"teach-{step}-drawn")
        if step == 2:
            page.keyboard.press(str(label))  # the label buttons' shortcut keys
        else:
            page.locator(f".st-key-label-{label - 1} button").click()
        wait_until(page, f"Episode so far: {step} step")
        expect(page.locator(".flmn-step")).to_have_count(step)  # st.html draws a moment after the run ends
        read = drawn_read(page, "FLMN")  # the memories after the step, its label now known
        assert read["unit"] == pytest.approx(read_view.PANEL_PX["row"], abs=1), read
        for bar in read["bars"]:  # weights on their true scale, never stretched to the maximum
            assert bar["height"] == pytest.approx(bar["weight"] * read["unit"], abs=1), read
        if step > 2:  # a 2nd drawing of a label: the default FLMN's most-read row holds the 1st (◆, by step)
            assert read["bars"][0]["name"] == f"◆ x{step - 2}\nlabel {label}", read
    snapshot(page, "teach-after-labelling")
    assert len(set(memories)) == len(memories), "the memories did not change from one drawing to the next"
    strip = page.locator(".flmn-strip").inner_text()
    assert strip.count("label 1") == 2 and strip.count("label 2") == 2

    with page.expect_download() as download:
        page.get_by_role("button", name="Save episode").click()
    saved = InteractiveEpisode.load(download.value.path())
    assert saved.labels == [label - 1 for _, label in drawings] and set(saved.recorded) == {FLMN, MANN}

    page.get_by_role("link", name="Episode explorer").click()
    wait_until(page, "Step 1 of 4")
    first = figures(page)
    assert {"FLMN feature memory", "FLMN label memory", "MANN memory"} <= set(first)
    snapshot(page, "explorer-session-step1")
    page.get_by_role("slider").focus()
    page.keyboard.press("End")  # the step slider, moved as a person would with the keyboard
    wait_until(page, "Step 4 of 4")
    last = figures(page)
    assert all(first[name] != last[name] for name in ("FLMN feature memory", "FLMN label memory", "MANN memory"))
    snapshot(page, "explorer-session-step4")
    page.get_by_role("radio", name="Generated characters").check(force=True)
    wait_until(page, "Step 1 of 50")
    snapshot(page, "explorer-generated")  # Play and Pause: tests/test_explorer_browser.py

    page.get_by_role("link", name="Results").click()
    wait_until(page, "Table 1: Omniglot")
    snapshot(page, "results")
    page.get_by_role("link", name="How it works").click()
    wait_until(page, "The memory equations")
    page.wait_for_function("() => document.querySelectorAll('.katex').length >= 10")  # KaTeX typesets late
    snapshot(page, "how-it-works")

    page.get_by_role("link", name="Teach").click()
    wait_until(page, "Episode so far: 4 steps")
    expect(page.locator(".flmn-step")).to_have_count(4)  # the episode survived the page changes
