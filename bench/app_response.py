"""How fast the app answers, and how much memory its server holds after a long session.

    python bench/app_response.py                      # 24 drawings, 3 first renders, 200 steps on a real server
    python bench/app_response.py --drawings 40 --server-steps 0

Prints, after the machine and its load average:
1. the server-side time from a submitted drawing to updated predictions and memory heatmaps: the Teach page's
   whole script run (models, figures, strip), as the page measures it itself, driven by AppTest through the
   page's test drawing hook, with the episode growing as the drawings are labelled (median, min, max);
2. the first render of a real `streamlit run app.py` in Debian's chromium: from opening the address to the
   Teach page drawn, on a fresh server (torch imported, checkpoints loaded) and for a further session on
   the running server (median of 3 each);
3. the resident memory of that real server process (/proc/<pid>/status) while one session teaches it
   --server-steps pictures (uploaded, labelled with the buttons), resetting every --cycle steps: with the
   steps held, and after each reset.
Parts 2 and 3 need chromium and playwright (tests/browser_harness.py); without them they are left out.
"""

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import browser_harness  # noqa: E402
import streamlit  # noqa: E402
from flmn_core.glyphs import make_alphabet, render  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

CLASSES = 5  # the shipped Experiment I checkpoints'
PICTURES = 50  # distinct generated pictures, used in turn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=24, help="timed drawings on the Teach page (at least 20)")
    parser.add_argument("--renders", type=int, default=3, help="first renders to time, fresh and warm")
    parser.add_argument("--server-steps", type=int, default=200, help="steps taught to the real server (0: skip)")
    parser.add_argument("--cycle", type=int, default=50, help="steps between resets on the real server")
    return parser.parse_args(argv)


def pictures():
    """PICTURES generated drawings of CLASSES characters: uint8 [105, 105], black ink on white."""
    alphabet = make_alphabet(CLASSES, seed=11)
    return [render(alphabet[i % CLASSES], drawer_seed=i) for i in range(PICTURES)]


def summary(values, unit):
    return (f"median {statistics.median(values):.0f} {unit}, min {min(values):.0f}, max {max(values):.0f} "
            f"(n = {len(values)})")


def machine():
    """One line: CPU, cores, load average, versions."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine()) \
        if Path("/proc/cpuinfo").is_file() else platform.processor() or platform.machine()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"machine: {cpu}, {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min); Python "
            f"{platform.python_version()}, torch {torch.__version__}, streamlit {streamlit.__version__}")


def response_times(drawings):
    """Teach page through AppTest: -> (page's server times in ms, AppTest rerun wall times in ms)."""
    images = pictures()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    server, wall = [], []
    for t in range(drawings + 2):  # the first two warm up the page's code paths; not counted
        at.session_state["test_drawing"] = images[t % PICTURES]
        started = time.perf_counter()
        at.run()
        elapsed = 1000 * (time.perf_counter() - started)
        if at.exception or at.button(key="label-0").disabled:
            raise RuntimeError(f"the drawing was not predicted: {at.exception or at.error}")
        if t >= 2:
            server.append(at.session_state["last_update_ms"])
            wall.append(elapsed)
        at.button(key=f"label-{t % CLASSES}").click().run()
    return server, wall


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def open_teach_page(browser, url):
    """A new session on the Teach page -> (page, seconds from opening the address to the page drawn)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(browser_harness.RENDER_TIMEOUT_MS)
    started = time.perf_counter()
    page.goto(url)
    browser_harness.wait_until(page, "Teach the models")
    return page, time.perf_counter() - started


def teach_on_server(page, steps, first_round):
    """Upload and label `steps` pictures in one session of the real server, as a person would. Each
    labelled step brings a fresh uploader, numbered by the page's canvas round (first_round at the start)."""
    files = [png(p) for p in pictures()]
    for t in range(steps):
        page.locator(f".st-key-upload-{first_round + t} input[type=file]").set_input_files(
            {"name": f"drawing-{t}.png", "mimeType": "image/png", "buffer": files[t % PICTURES]})
        browser_harness.wait_until(page, "From the uploaded picture")
        page.locator(f".st-key-label-{t % CLASSES} button").click()
        browser_harness.wait_until(page, f"Episode so far: {t + 1} step")


def reset_on_server(page):
    page.get_by_role("button", name="Reset…").click()
    page.get_by_role("button", name="Yes, start again").click()
    browser_harness.wait_until(page, "Episode so far: 0 steps")


def real_server(renders, steps, cycle):
    """First renders (fresh and warm servers) and the server's memory in a long session: `steps` steps,
    reset every `cycle` steps -> (fresh seconds, warm seconds, [(when, VmRSS KiB)], seconds per step)."""
    fresh, warm, memory, seconds_per_step = [], [], [], None
    with tempfile.TemporaryDirectory() as logs, browser_harness.chromium() as browser:
        for round_ in range(renders):
            with browser_harness.streamlit_server(Path(logs) / f"server-{round_}.log") as (url, process):
                page, seconds = open_teach_page(browser, url)
                fresh.append(seconds)
                page.close()
                page, seconds = open_teach_page(browser, url)
                warm.append(seconds)
                if round_ < renders - 1 or steps == 0:
                    page.close()
                    continue
                memory.append(("before", browser_harness.rss_kib(process.pid)))
                started = time.perf_counter()
                for cycle_index in range(steps // cycle):
                    # The page numbers its uploader by canvas round: one more after each label and each reset.
                    teach_on_server(page, cycle, first_round=cycle_index * (cycle + 1))
                    taught = (cycle_index + 1) * cycle
                    memory.append((f"{taught} steps ({cycle} held)", browser_harness.rss_kib(process.pid)))
                    reset_on_server(page)
                    memory.append((f"{taught} steps, reset", browser_harness.rss_kib(process.pid)))
                seconds_per_step = (time.perf_counter() - started) / steps
                page.close()
    return fresh, warm, memory, seconds_per_step


def main(argv=None):
    args = parse_args(argv)
    if args.drawings < 20:
        raise SystemExit("--drawings must be at least 20")
    if args.cycle < 1 or args.server_steps % args.cycle:
        raise SystemExit("--server-steps must be a multiple of --cycle")
    torch.set_num_threads(1)  # as the app does: one thread per server process
    print(machine())

    server, wall = response_times(args.drawings)
    print(f"drawing -> predictions and heatmaps, server time of the Teach page's run: {summary(server, 'ms')}")
    print(f"  (AppTest rerun wall time, the same runs: {summary(wall, 'ms')})")

    if browser_harness.sync_playwright is None or not browser_harness.CHROMIUM.is_file():
        print(f"first render and server memory left out: needs playwright and chromium at {browser_harness.CHROMIUM}")
        return
    fresh, warm, memory, per_step = real_server(args.renders, args.server_steps, args.cycle)
    print(f"first render of the Teach page, fresh `streamlit run`: {summary([1000 * s for s in fresh], 'ms')}")
    print(f"  another session on the running server: {summary([1000 * s for s in warm], 'ms')}")
    if memory:
        print("real server memory (VmRSS): " + ", ".join(f"{kib / 1024:.0f} MB {when}" for when, kib in memory))
        print(f"  {per_step:.2f} s per step in the browser (upload, then label)")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
