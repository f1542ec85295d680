"""The README's screenshots of the app, taken in a real browser.

    python -m bench.screenshots                  # writes assets/screenshot-teach.png, assets/screenshot-explorer.png

A real `streamlit run app.py` of this tree and Debian's headless chromium (Playwright), as bench.app_latency
runs them, at 1440 x 900. The Teach page loads the example episode (assets/example-episode.npz) and gets one
more drawing of one of its generated characters, drawn with the mouse and not labelled yet; the explorer
then shows a step of that episode. So no Omniglot image (the dataset is not the project's to ship) is in
either picture. Each PNG is reduced to 256 colours and written atomically.
"""

import argparse
import io
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from PIL import Image

from bench.app_latency import IDLE, ROOT, TIMEOUT_MS
from bench.serving import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from flmn_core.data.normalise import OMNIGLOT_SIZE
from flmn_core.data.strokes import CANVAS_SIDE, PEN_READY_MS
from flmn_core.files import atomic_open
from flmn_core.interactive.episode_file import read_episode_file
from flmn_core.interactive.examples import EXAMPLE_PATH, example_alphabet

VIEWPORT = {"width": 1440, "height": 900}
PENDING = 0  # the character drawn on the canvas, not labelled yet (label 1)
EXPLORER_STEP = 12  # the explorer's step shown (1-based): late enough that both memories hold every label
ASSETS = ROOT / "assets"


# Plotly draws a chart after the script has finished: until then its place is an empty grey box (a skeleton
# while Streamlit loads the chart's code, then a chart without its SVG).
CHARTS_DRAWN = """() => !document.querySelector('[data-testid^="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(chart => chart.querySelector('.main-svg'))"""


def wait_for(page, text):
    """Wait until the script has finished, the page shows text and every chart is drawn."""
    page.wait_for_function("([idle, text]) => document.querySelector(idle) && document.body.innerText.includes(text)",
                           arg=[IDLE, text])
    page.wait_for_function(CHARTS_DRAWN)


def scroll_to(page, selector):
    """Scroll the page's main section (Streamlit scrolls it, not the document) so that the first element
    matching selector is at the top; "top": back to the page's top."""
    page.evaluate("""(selector) => {
        const main = document.querySelector('[data-testid="stMain"]');
        if (selector === "top") main.scrollTo(0, 0); else document.querySelector(selector).scrollIntoView();
    }""", selector)


def with_step(url, step):
    """The explorer's address url showing another step."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), "step": step})))


def draw_character(page, character):
    """Draw a generated character's strokes on the canvas with the mouse, waiting for each prediction."""
    page.wait_for_timeout(PEN_READY_MS)  # a fresh canvas takes up its pen a moment after it appears
    box = page.locator("canvas.upper-canvas").bounding_box()
    scale = CANVAS_SIDE / OMNIGLOT_SIZE  # a glyph's points are in Omniglot's 105 x 105 frame
    for n, stroke in enumerate(character.strokes, start=1):
        points = [(box["x"] + scale * x, box["y"] + scale * y) for x, y in stroke.points]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:] or [(points[0][0] + 2, points[0][1] + 2)]:  # a dot: a tiny move marks it
            page.mouse.move(*point, steps=6)  # intermediate moves, so the pen follows a line as a hand would
        page.mouse.up()
        wait_for(page, f"From {n} stroke{'s' * (n != 1)} on the canvas")


def save_png(png, path):
    """A screenshot's PNG bytes -> path, reduced to 256 colours (a UI has few), written atomically."""
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    with atomic_open(path) as f:
        image.save(f, format="PNG", optimize=True)
    print(f"wrote {path}: {path.stat().st_size // 1024} KB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder of the PNGs (default: %(default)s)")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        raise SystemExit(f"needs chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work, streamlit_server(ROOT, Path(work) / "server.log") as (url, _), \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            wait_for(page, "Step 1: draw one character")
            page.get_by_role("button", name="Load the example episode", exact=True).click()
            wait_for(page, f"Step {len(read_episode_file(EXAMPLE_PATH).labels) + 1}: draw one character")
            draw_character(page, example_alphabet()[PENDING])
            page.mouse.move(0, 0)  # no hover highlight in the picture
            scroll_to(page, "top")  # the click on the example's button, low on the page, scrolled it
            save_png(page.screenshot(), args.out / "screenshot-teach.png")

            page.get_by_role("link", name="Episode explorer").click()
            wait_for(page, "Step 1 of")
            # The page's address holds its view (the episode's token and the step): go to the step shown.
            page.goto(with_step(page.url, EXPLORER_STEP))
            wait_for(page, f"Step {EXPLORER_STEP} of")
            scroll_to(page, '[data-testid="stSlider"]')  # the step, its input and both memories
            save_png(page.screenshot(), args.out / "screenshot-explorer.png")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
