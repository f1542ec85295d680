"""The explorer and human mode in a real browser: a link opens an episode at its step, a reload keeps the
step, Play moves on by itself and Pause holds, and a whole short game of human mode is played with clicks.
Needs chromium (skipped on a developer's machine without it, failed under CI)."""

import re
import time

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # browser_harness.chromium then skips, or fails under CI
    expect = None

from browser_harness import IDLE, chromium, snapshot, streamlit_server, wait_until

from flmn_core.model import zoo

FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name  # what the app shows first

pytestmark = pytest.mark.browser

RENDER_TIMEOUT_MS = 240_000  # generous: waiting is not a speed test, and CI may share the cores with training
TICKS_WATCHED = 3  # after Pause, the step must stay put over this many of Play's one-second ticks


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("streamlit") / "server.log") as (url, _):
        yield url


@pytest.fixture
def page(server):
    if expect is not None:
        expect.set_options(timeout=RENDER_TIMEOUT_MS)  # a rerun on a busy machine takes seconds
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        yield page


def step_shown(page):
    """The step of the explorer's header, from the page's text."""
    return int(re.search(r"Step (\d+) of \d+", page.inner_text("body")).group(1))


def wait_for_step(page, at_least):
    """Wait until the explorer shows a step of at least this number. Not waiting for the script to be idle:
    while playing, ticks keep it running, and a busy browser may skip drawing a step."""
    page.wait_for_function("""(n) => { const m = document.body.innerText.match(/Step (\\d+) of \\d+/);
                                       return m !== null && Number(m[1]) >= n; }""", arg=at_least)


def idle(page):
    page.wait_for_selector(IDLE)


def button(page, key):
    """The visible button of a widget key (with a tooltip Streamlit also lays out a hidden copy), once the
    page holds exactly one."""
    locator = page.locator(f".st-key-{key} button:visible")
    expect(locator).to_have_count(1)
    return locator


def test_a_link_and_a_reload_keep_the_step_and_pause_holds(page, server):
    page.goto(f"{server}/explorer?source=glyphs&seed=3&step=12&show=Addressing")
    wait_until(page, "Step 12 of 50")
    button(page, "explorer_forward").click()
    wait_until(page, "Step 13 of 50")
    page.wait_for_function("() => location.search.includes('step=13')")
    page.reload()
    wait_until(page, "Step 13 of 50")
    assert "seed=3" in page.url and "show=Addressing" in page.url

    play = page.locator(".st-key-explorer_playing label")  # the Play switch
    switch = page.locator(".st-key-explorer_playing input")
    play.click()  # one step a second, by itself
    expect(switch).to_be_checked()
    wait_for_step(page, 16)
    play.click()
    expect(switch).not_to_be_checked()
    idle(page)
    paused = step_shown(page)
    time.sleep(TICKS_WATCHED * 1.0)  # watch a few ticks' worth: nothing may move while paused
    idle(page)
    assert step_shown(page) == paused and f"step={paused}" in page.evaluate("location.search")
    expect(page.locator('[class*="st-key-explorer_step"] [data-testid="stSliderThumbValue"]')).to_have_text(str(paused))
    page.reload()
    wait_until(page, f"Step {paused} of 50")


def test_a_whole_game_of_human_mode_with_clicks(page, server):
    page.goto(f"{server}/play?source=glyphs&samples=1&seed=2")  # 5 drawings, one per character
    for t in range(1, 6):
        wait_until(page, f"Drawing {t} of 5")
        button(page, "play-answer-0").click()  # always "1": right for one character only
    wait_until(page, "Your score")
    body = page.inner_text("body")
    assert "You answered 1 of 5 drawings right" in body and "34.5%" in body
    assert FLMN in body and MANN in body
    snapshot(page, "play-scores")
