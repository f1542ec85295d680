"""How fast the Teach page answers a person drawing in a real browser, against another version of the app.

    python -m bench.app_latency                          # 15 drawings, this tree against `main`
    python -m bench.app_latency --drawings 40 --baseline none

A real `streamlit run app.py` for this tree and one for --baseline (a git ref, exported with `git archive`
to a temporary folder), Debian's headless chromium (Playwright), and real people's pen trajectories
(Omniglot's stroke files under FLMN_DATA_DIR, read by flmn_core.data.strokes) replayed as mouse moves on the
canvas. Both versions are taught the same episode: --classes characters, each drawn by several people, in
a shuffled order, each drawing labelled with its character's label. The versions take turns drawing by
drawing (the order alternating), so load from other work on the machine falls on both alike: the ratio of
their figures is what carries over to another machine.

Measured in the page, with performance.now():
- mouse-up -> predictions: from the mouse-up ending a stroke to the page showing the predictions for the
  drawing so far (its stroke-count caption and the prediction text present, neither stale). Includes the
  200 ms that the canvas component waits before it sends a stroke (a constant of its frontend).
- mouse-up -> run finished: to the end of that update (memories drawn too).
- label click -> fresh canvas: from the click on a label button to a new, empty canvas under "Step t + 1".
After each update the replay waits for the page to settle (the browser idle) before the next stroke or
click, and before each drawing's first stroke for a person's reaction time (strokes.PEN_READY_MS), as a
person would. The first drawing on each server warms it up and is not counted. Prints the machine and its
load, then median and 90th percentile of each figure per version, and the ratios.
"""

import argparse
import os
import platform
import random
import statistics
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.arguments import existing_folder, whole_number
from bench.serving import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from flmn_core.data import strokes
from flmn_core.training.evaluate import positive_int, seed_int

ROOT = Path(__file__).resolve().parents[1]

TIMEOUT_MS = 120_000  # a loaded machine can take many seconds for a first render
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

# In-page probes. Both versions of the page show, for a drawing of n strokes, a caption "From n stroke(s) on
# the canvas" and a text "<model> predicts <label>"; under a new canvas, "Step t: draw one character".
RECORD_EVENTS = """() => {
    window.flmnLast = {};
    for (const kind of ["mouseup", "click"])
        document.addEventListener(kind, () => { window.flmnLast[kind] = performance.now(); }, true);
}"""
PREDICTIONS_SHOWN = """([caption]) => {
    const fresh = [...document.querySelectorAll('[data-testid="stElementContainer"]')]
        .filter(e => e.getAttribute("data-stale") !== "true").map(e => e.innerText);
    return fresh.some(t => t.includes(caption)) && fresh.some(t => t.includes(" predicts "))
        ? performance.now() : false;
}"""
RUN_FINISHED = f"""() => document.querySelector('{IDLE}') ? performance.now() : false"""
# The page has drawn what the run sent (the browser's main thread is idle): the next stroke or click of the
# replay waits for it, as a person's would. Without it, a version whose server finishes sooner is handed the
# next stroke while its browser is still drawing the last update's charts, and is timed for both.
SETTLED = "() => new Promise(done => requestIdleCallback(() => done(true), {timeout: 5000}))"
FRESH_CANVAS = """([old, heading]) => {
    const canvas = [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
        .map(host => host.shadowRoot && host.shadowRoot.querySelector("canvas.upper-canvas")).find(c => c);
    const fresh = [...document.querySelectorAll('[data-testid="stElementContainer"]')]
        .filter(e => e.getAttribute("data-stale") !== "true").some(e => e.innerText.includes(heading));
    return !old.isConnected && canvas && fresh ? performance.now() : false;
}"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=positive_int, default=15,
                        help="drawings taught to each version (after 1 warm-up)")
    parser.add_argument("--classes", type=whole_number(2, 5), default=5, help="characters (labels) in the episode")
    parser.add_argument("--baseline", default="main", help="git ref to compare with, or 'none'")
    parser.add_argument("--seed", type=seed_int, default=0, help="which characters and drawers")
    parser.add_argument("--data-dir", type=existing_folder, default=os.environ.get("FLMN_DATA_DIR", "../shared/data"),
                        help="folder holding omniglot-strokes/ (default: $FLMN_DATA_DIR)")
    return parser.parse_args(argv)


def episode(data_dir, drawings, classes, seed):
    """The drawings to teach: [(strokes, label 0..C-1)], `classes` characters drawn by different people."""
    by_character = {}
    for key, value in strokes.read_drawings(strokes.stroke_zips(data_dir)).items():
        by_character.setdefault(key.rsplit("/", 1)[0], []).append(value)
    rng = random.Random(seed)
    characters = rng.sample(sorted(by_character), classes)
    steps = []
    for t in range(drawings):
        label, drawer = t % classes, (t // classes) % len(by_character[characters[0]])
        steps.append((by_character[characters[label]][drawer], label))
    rng.shuffle(steps)
    return steps


def export(ref, folder):
    """The tree of git ref `ref` written to folder (checkpoints included)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


class Session:
    """One browser tab on one version's server, teaching it the episode and timing each step."""

    def __init__(self, browser, name, url):
        self.name, self.step = name, 1
        self.predictions, self.finished, self.fresh = [], [], []
        self.page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(url)
        self.page.wait_for_function(f"() => document.querySelector('{IDLE}') && "
                                    "document.body.innerText.includes('Step 1: draw one character')")
        self.page.evaluate(RECORD_EVENTS)

    def canvas(self):
        return self.page.locator("canvas.upper-canvas")

    def draw(self, drawing, count):
        """Replay a drawing's strokes with the mouse; after each mouse-up, time the predictions' update."""
        self.page.wait_for_timeout(strokes.PEN_READY_MS)  # a person's reaction to a fresh canvas
        box = self.canvas().bounding_box()
        mouse = self.page.mouse
        for n, points in enumerate(strokes.to_canvas(drawing), start=1):
            points = [(box["x"] + float(x), box["y"] + float(y)) for x, y in points]
            mouse.move(*points[0])
            mouse.down()
            for point in points[1:]:
                mouse.move(*point)
            mouse.up()
            caption = f"From {n} stroke{'s' * (n != 1)} on the canvas"
            shown = self.page.wait_for_function(PREDICTIONS_SHOWN, arg=[caption], polling="raf").json_value()
            finished = self.page.wait_for_function(RUN_FINISHED, polling="raf").json_value()
            self.page.evaluate(SETTLED)
            up = self.page.evaluate("() => window.flmnLast.mouseup")
            if count:
                self.predictions.append(shown - up)
                self.finished.append(finished - up)

    def label(self, label, count):
        """Click a label button; time until a new, empty canvas is ready for the next step."""
        old = self.canvas().element_handle()
        self.page.locator(f".st-key-label-{label} button").click()
        self.step += 1
        ready = self.page.wait_for_function(FRESH_CANVAS, arg=[old, f"Step {self.step}: draw one character"],
                                            polling="raf").json_value()
        clicked = self.page.evaluate("() => window.flmnLast.click")
        self.page.wait_for_function(RUN_FINISHED, polling="raf")
        self.page.evaluate(SETTLED)
        if count:
            self.fresh.append(ready - clicked)


def machine():
    """One line: CPU, cores and load average."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").is_file() \
        else platform.machine()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"machine: {cpu}, {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)"


def quantiles(values):
    """-> (median, 90th percentile) of a list of milliseconds."""
    return statistics.median(values), statistics.quantiles(values, n=10, method="inclusive")[-1]


def report(sessions):
    """Print each figure per version, and this tree's against the baseline's."""
    figures = (("mouse-up -> predictions", "predictions"), ("mouse-up -> run finished", "finished"),
               ("label click -> fresh canvas", "fresh"))
    for title, attribute in figures:
        medians = {}
        for session in sessions:
            values = getattr(session, attribute)
            median, p90 = quantiles(values)
            medians[session.name] = median
            print(f"{title:30s} {session.name:12s}: median {median:5.0f} ms, p90 {p90:5.0f} ms (n = {len(values)})")
        if len(sessions) == 2:
            this, baseline = (medians[s.name] for s in sessions)
            print(f"{'':30s} {'ratio':12s}: {this / baseline:.2f} of {sessions[1].name}'s median")


def main(argv=None):
    args = parse_args(argv)
    if args.drawings < 2 or args.classes < 2:
        raise SystemExit("--drawings and --classes must be at least 2")
    if not CHROMIUM.is_file():
        raise SystemExit(f"needs chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    steps = episode(args.data_dir, args.drawings + 1, args.classes, args.seed)
    print(machine())
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        versions = [("this tree", ROOT)]
        if args.baseline != "none":
            (work / "baseline").mkdir()
            export(args.baseline, work / "baseline")
            versions.append((args.baseline, work / "baseline"))
        urls = [stack.enter_context(streamlit_server(folder, work / f"server-{i}.log"))[0]
                for i, (_, folder) in enumerate(versions)]
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        sessions = [Session(browser, name, url) for (name, _), url in zip(versions, urls)]
        for t, (drawing, label) in enumerate(steps):
            for session in sessions[:: 1 if t % 2 == 0 else -1]:  # alternate which version goes first
                session.draw(drawing, count=t > 0)
                session.label(label, count=t > 0)
        report(sessions)
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
