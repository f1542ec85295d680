"""Many people at once on one real server: 8 browser sessions (separate contexts of one chromium) each teach
the models a different episode at the same time, their actions interleaved so that the server runs their
scripts side by side. Afterwards each session shows only its own pictures, label names, labels and
memories, the episode file each one saves holds only its own steps, and the model that all sessions share
(st.cache_resource) predicts exactly as before: a fresh session shown the same probe picture before and
after gets bit-identical probabilities and memories, equal to those of the checkpoint loaded here.

The pictures are characters generated here (flmn_core.data.glyphs), uploaded through the Teach page's file
uploader: faster than drawing with the mouse, and test_browser.py already draws.
"""

import base64
import io
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from browser_harness import (
    RENDER_TIMEOUT_MS,
    chromium,
    plotly_arrays,
    rss_kib,
    show_memory_views,
    snapshot,
    streamlit_server,
    wait_until,
)
from PIL import Image

from flmn_core import load_model
from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.interactive import figures
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.uploads import MAX_UPLOAD_MB, prepare, read_upload
from flmn_core.model import zoo

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # about 3 minutes: 8 browser sessions

SESSIONS = 8
STEPS = 3  # pictures each session labels
CLASSES = 5  # the shipped Experiment I checkpoints'
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name
MEMORY_TITLES = ("FLMN addressing", "FLMN feature memory", "FLMN label memory", "MANN addressing", "MANN memory")
PROBABILITIES = ""  # the Teach page's probabilities chart has no title
OWNER = re.compile(r"\bu(\d)[a-e]\b")  # session i names its labels u<i>a .. u<i>e
# Plotly redraws a moment after the script run ends: poll for the new figures as long as for any render
# (a guard against a hang, not a speed limit).
SETTLE_SECONDS = RENDER_TIMEOUT_MS / 1000


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Person:
    """One session's plan: its pictures (PNG files), what the models see of them, its labels (0..C-1) and
    label names; `page` is its browser tab once open."""

    index: int
    pictures: list
    images: list
    labels: list
    names: list
    page: object = field(default=None, repr=False)


def plan(index):
    """Session `index`: STEPS characters of its own alphabet, its own labels and label names."""
    alphabet = make_alphabet(STEPS, seed=1000 + index)
    pictures = [png_bytes(render(character, drawer_seed=index)) for character in alphabet]
    return Person(index=index, pictures=pictures,
                  images=[prepare(read_upload(data, f"u{index}-{s}.png")) for s, data in enumerate(pictures)],
                  labels=[(index + 2 * s) % CLASSES for s in range(STEPS)],
                  names=[f"u{index}{letter}" for letter in "abcde"])


def taught(models, images, labels):
    """The episode as the Teach page builds it (predict, then commit), computed in this process."""
    episode = InteractiveEpisode(CLASSES)
    for image, label in zip(images, labels):
        episode.predict(models, image)
        episode.commit(label)
    return episode


def memory_arrays(steps):
    """{figure title: its first trace's values} of the memory figures the page draws for `steps`
    ({model name: interactive.Step})."""
    arrays = {}
    for step in steps.values():
        for figure in figures.trace_figures(step.state, step.trace).values():
            arrays[figure.layout.title.text] = np.asarray(figure.data[0].z, dtype=np.float32)
    return arrays


def settled_arrays(page, expected):
    """The page's Plotly arrays once every expected title shows the expected values (or the last ones
    read after SETTLE_SECONDS, for the assertion to report)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        shown = plotly_arrays(page)
        matches = all(title in shown and np.allclose(shown[title][0], value, rtol=1e-5, atol=1e-6)
                      for title, value in expected.items())
        if matches or time.monotonic() > deadline:
            return shown
        page.wait_for_timeout(200)


def assert_arrays(shown, expected, who):
    for title, value in expected.items():
        assert title in shown, f"{who}: no chart titled {title!r} (charts: {sorted(shown)})"
        np.testing.assert_allclose(shown[title][0], value, rtol=1e-5, atol=1e-6, err_msg=f"{who}: {title}")


def upload(page, round_, name, data):
    """Put a file in the Teach page's uploader of this canvas round (a fresh one after each label)."""
    page.locator(f".st-key-upload-{round_} input[type=file]").set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": data})


def probe(browser, url, picture):
    """A fresh session shows the probe picture -> the page's Plotly arrays (probabilities and memories)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        page.goto(url)
        wait_until(page, "Teach the models")
        upload(page, 0, "probe.png", picture)
        wait_until(page, "From the uploaded picture")
        show_memory_views(page, ("Memories", "Addressing"), MEMORY_TITLES)
        return plotly_arrays(page)
    finally:
        context.close()


def thumbnails(page):
    """The strip's thumbnails decoded: [T, 20, 20] uint8 (black ink on white)."""
    sources = page.eval_on_selector_all(".flmn-step img", "images => images.map(i => i.src)")
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")) for src in sources]


def open_sessions(browser, url, people):
    """A browser context (its own cookies, so its own Streamlit session) per person, all loading at once;
    each names its labels."""
    for person in people:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        person.page = context.new_page()
        person.page.set_default_timeout(RENDER_TIMEOUT_MS)
        person.page.goto(url, wait_until="commit")
    for person in people:
        wait_until(person.page, "Teach the models")
        person.page.get_by_text("Name the labels (optional)").click()
        names = person.page.locator(".st-key-class_names_text input")
        names.fill(", ".join(person.names))
        names.press("Enter")
    for person in people:
        wait_until(person.page, f"Label 1 ({person.names[0]})")


def teach_side_by_side(people):
    """Each round, every session uploads its picture, then every session labels it: each action is sent
    to all sessions before waiting for any, so the server runs their scripts at the same time, each
    against the one shared model."""
    for step in range(STEPS):
        for person in people:
            upload(person.page, step, f"u{person.index}-{step}.png", person.pictures[step])
        for person in people:
            wait_until(person.page, "From the uploaded picture")
            if step == 0:
                show_memory_views(person.page, ("Memories", "Addressing"), MEMORY_TITLES)
        for person in people:
            person.page.locator(f".st-key-label-{person.labels[step]} button").click()
        for person in people:
            wait_until(person.page, f"Episode so far: {step + 1} step")


def check_only_its_own(person, models):
    """The session shows its own memories, label names, labels and pictures, and saves its own episode."""
    who, page = f"session {person.index}", person.page
    wait_until(page, f"After step {STEPS}, its label given")
    mine = taught(models, person.images, person.labels)
    expected = memory_arrays({name: run[-1] for name, run in mine.runs.items()})
    assert_arrays(settled_arrays(page, expected), expected, who)
    owners = {int(i) for i in OWNER.findall(page.inner_text("body"))}
    assert owners == {person.index}, f"{who} shows label names of sessions {owners}"
    cells = page.locator(".flmn-step").all_inner_texts()
    assert [re.search(r"label (\d) \((u\d[a-e])\)", c).groups() for c in cells] == \
        [(str(label + 1), person.names[label]) for label in person.labels], who
    shown = thumbnails(page)
    assert len(shown) == STEPS, who
    for thumb, image in zip(shown, person.images):  # the strip's PNGs are 255 * (1 - image), rounded
        assert np.abs(thumb.astype(np.float32) - 255 * (1 - image.numpy())).max() <= 1, f"{who}: a picture not its own"

    with page.expect_download() as download:
        page.get_by_role("button", name="Save episode").click()
    saved = InteractiveEpisode.load(download.value.path())
    assert saved.labels == person.labels and saved.class_names == person.names, who
    torch.testing.assert_close(torch.stack(saved.images), torch.stack(person.images), rtol=0, atol=1e-6)
    for name in SHIPPED:
        np.testing.assert_allclose(saved.recorded[name], mine.probabilities(name).numpy(), rtol=1e-5, atol=1e-6)


def check_upload_limit(page):
    """A file over the server's maxUploadSize is refused in the page with a message; the episode is kept."""
    page.get_by_text("Pen width, or upload a picture").click()
    upload(page, STEPS, "huge.png", bytes((MAX_UPLOAD_MB + 1) << 20))
    page.get_by_text(f"File must be {MAX_UPLOAD_MB:.1f}MB or smaller.").wait_for()
    assert page.locator(".flmn-step").count() == STEPS
    assert "Draw a character on the canvas" in page.inner_text("body")  # nothing reached the models


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Copies of the shipped Experiment I checkpoints, for the server and for this test alike (a checkpoint
    published into checkpoints/ meanwhile cannot make them differ)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    for name in SHIPPED:
        (folder / f"{name}.pt").write_bytes(zoo.weights_path(name).read_bytes())
    return folder


def test_eight_sessions_teach_at_once_and_never_see_each_other(checkpoints, tmp_path):
    started = time.perf_counter()
    models = {name: load_model(checkpoints / f"{name}.pt") for name in SHIPPED}
    people = [plan(i) for i in range(SESSIONS)]
    probe_picture = png_bytes(render(make_alphabet(1, seed=999)[0], drawer_seed=0))
    probe_steps = InteractiveEpisode(CLASSES).predict(models, prepare(read_upload(probe_picture)))

    log = tmp_path / "server.log"
    with streamlit_server(log, env={"FLMN_CHECKPOINT_DIR": str(checkpoints)}) as (url, server), chromium() as browser:
        before = probe(browser, url, probe_picture)
        assert_arrays(before, memory_arrays(probe_steps), "probe before")
        for trace, name in zip(before[PROBABILITIES], SHIPPED, strict=True):  # one bar trace per model
            np.testing.assert_allclose(trace, probe_steps[name].probabilities.numpy(), rtol=1e-5, atol=1e-6)
        rss_before = rss_kib(server.pid)

        open_sessions(browser, url, people)
        teach_side_by_side(people)
        for person in people:
            check_only_its_own(person, models)
        check_upload_limit(people[0].page)
        snapshot(people[0].page, "many-users-session-0")
        rss_after = rss_kib(server.pid)

        after = probe(browser, url, probe_picture)
        for title in (PROBABILITIES,) + MEMORY_TITLES:  # the shared models have not changed, bit for bit
            assert all(np.array_equal(a, b) for a, b in zip(before[title], after[title], strict=True)), title
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]
    print(f"\n{SESSIONS} sessions x {STEPS} steps on one server: {time.perf_counter() - started:.0f} s in all; "
          f"server RSS {rss_before / 1024:.0f} MB before the sessions, {rss_after / 1024:.0f} MB after them")
