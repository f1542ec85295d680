"""The Episode explorer through AppTest: the offline default source, stepping and Play/Pause, the view kept in
the URL (a reload, or a link, reproduces the episode at its step), the data sources' instructions when the
data is missing, and the label-shuffle replay as the page shows it."""

import functools
import http.server
import threading
from pathlib import Path

import fake_canvas
import pytest
import streamlit as st
import torch
from page_address import address
from read_markup import parse as parse_read
from streamlit.testing.v1 import AppTest

from flmn_core import load_model
from flmn_core.data import sources as data_sources
from flmn_core.data.glyphs import make_alphabet, render, sample_glyph_pool
from flmn_core.interactive.episode import episode_from_pool
from flmn_core.interactive.shuffle import derangement, label_shuffle_replay
from flmn_core.model import zoo

APP = Path(__file__).resolve().parents[1] / "app.py"
EXPLORER = "app_pages/explorer.py"
TIMEOUT = 60  # seconds per run; the first run imports torch and loads the checkpoints
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name


def texts(elements):
    return " ".join(str(e.value) for e in elements)


def explorer(**params):
    """A fresh session (as after a reload, or opening a link) on the explorer, with these query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({key: str(value) for key, value in params.items()})
    at.switch_page(EXPLORER).run()
    assert not at.exception, at.exception
    return at


def shown_step(at):
    """'Step s of T' of the step header -> (s, T)."""
    header = next(m.value for m in at.markdown if m.value.startswith("**Step "))
    step, _, total = header.split("**")[1].removeprefix("Step ").partition(" of ")
    return int(step), int(total)


def step_slider(at):
    """The step slider (a new widget, with a new key, each time the page moves the step itself)."""
    return next(s for s in at.slider if s.label == "Step")


def shown_episode(at):
    return at.session_state["explorer_episode"][1]


def reload(at):
    """The same URL in a new session, as a browser reload makes it."""
    return explorer(**address(at))


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """An empty data folder, and no pool loaded earlier in this process."""
    monkeypatch.setenv("FLMN_DATA_DIR", str(tmp_path))
    st.cache_resource.clear()
    return tmp_path


def test_offline_the_explorer_opens_on_generated_characters(no_data):
    at = explorer()
    assert at.radio(key="explorer_source").value == "glyphs" and not at.error and not at.info
    assert shown_step(at) == (1, 50) and set(shown_episode(at).runs) == set(SHIPPED)
    assert address(at) == {"source": "glyphs", "seed": "0", "samples": "10", "labels": "5", "step": "1", "shuffle": "0",
                           "show": "Read,Memories", "flmn": FLMN, "mann": MANN}


@pytest.mark.parametrize("source, files", [("omniglot", ("images_background.zip", "images_evaluation.zip")),
                                           ("mnist", ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))])
def test_without_the_data_a_source_says_how_to_point_the_app_at_it(no_data, source, files, monkeypatch):
    monkeypatch.setattr(data_sources, "OMNIGLOT_URL", "http://127.0.0.1:9/{name}.zip")  # offline: nothing listens
    monkeypatch.setattr(data_sources, "MNIST_URL", "http://127.0.0.1:9/{name}")
    at = explorer()
    at.radio(key="explorer_source").set_value(source).run()
    assert not at.exception, at.exception
    message = texts(at.info)
    assert "FLMN_DATA_DIR=../shared/data .venv/bin/streamlit run app.py" in message
    assert all(name in message for name in files) and str(no_data) in message
    assert at.button(key=f"retry-{source}").label == "Try again"
    at.button(key=f"download-{source}").click().run()  # offline, the download fails and says so
    assert not at.exception, at.exception
    assert "The download failed: could not download http://127.0.0.1:9/" in texts(at.error)
    assert files[0] in texts(at.info) and not list(no_data.rglob("*.*"))  # nothing half-written is left


@pytest.fixture
def file_server(data_dir):
    """A local HTTP server serving the real data folder (the official files), as their hosts would ->
    its address."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_dir))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_the_download_button_fetches_the_official_files_and_the_episode_follows(file_server, data_dir, no_data,
                                                                               monkeypatch):
    """miniMNIST through the project's own downloader from a local server: the files land in the data
    folder, byte for byte the served ones, and the page shows an episode of them at once."""
    monkeypatch.setattr(data_sources, "MNIST_URL", file_server + "/mnist/{name}")
    at = explorer()
    at.radio(key="explorer_source").set_value("mnist").run()
    at.button(key="download-mnist").click().run()
    assert not at.exception and not at.error, (at.exception, texts(at.error))
    for name in data_sources.MNIST_FILES:
        assert (no_data / "mnist" / name).read_bytes() == (data_dir / "mnist" / name).read_bytes()
    assert shown_step(at) == (1, 50) and not at.info


def chart_names(at):
    """The page's figures in order: Plotly charts by key without the "explorer-" prefix, read views
    (flmn_core.interactive.read_view's HTML) by title ("FLMN read")."""
    names = []

    def walk(node):
        if node.type == "plotly_chart":
            names.append(node.key.removeprefix("explorer-"))
        elif node.type == "html" and 'class="flmn-read"' in node.proto.body:
            names.append(parse_read(node.proto.body).title)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return names


def test_stepping_and_play_pause_side_by_side():
    at = explorer()
    episode = shown_episode(at)
    step_slider(at).set_value(5).run()
    markdown = texts(at.markdown)
    assert shown_step(at) == (5, 50) and f"{episode.labels[3] + 1}**, the label of step 4" in markdown
    assert f"**{FLMN}**" in markdown and f"**{MANN}**" in markdown
    assert chart_names(at) == ["probabilities", "FLMN read", "MANN read", f"{FLMN}-feature_memory",
                               f"{FLMN}-label_memory", f"{MANN}-memory"]  # the default views: the reads, the memories
    at.button_group(key="explorer-views").set_value(["Addressing", "Controller"]).run()
    assert chart_names(at) == ["probabilities", f"{FLMN}-addressing", f"{FLMN}-controller", f"{MANN}-addressing",
                               f"{MANN}-controller"]
    at.button_group(key="explorer-views").set_value([]).run()
    assert chart_names(at) == ["probabilities"] and "Choose above what to show" in texts(at.caption)
    at.button_group(key="explorer-views").set_value(["Read", "Memories"]).run()
    at.button(key="explorer_forward").click().run()
    assert shown_step(at) == (6, 50) and address(at)["step"] == "6"
    at.button(key="explorer_back").click().run()
    assert shown_step(at) == (5, 50)

    at.toggle(key="explorer_playing").set_value(True).run()  # playing shows the next step at once, then one per tick
    assert at.session_state["explorer_playing"] and shown_step(at) == (6, 50)
    assert "Step" not in [s.label for s in at.slider]  # no step slider to send back a stale step
    at.run()  # a full run of the page (the sidebar, say) is not a tick: the step stays
    assert shown_step(at) == (6, 50)
    at.toggle(key="explorer_playing").set_value(False).run()
    assert not at.session_state["explorer_playing"] and not at.toggle(key="explorer_playing").value
    assert step_slider(at).value == 6 and shown_step(at) == (6, 50)

    step_slider(at).set_value(50).run()
    at.toggle(key="explorer_playing").set_value(True).run()  # from the end, play starts again from the first step
    assert shown_step(at) == (1, 50)
    at.toggle(key="explorer_playing").set_value(False).run()
    seed = at.number_input(key="explorer_seed").value
    at.button(key="explorer_new").click().run()
    assert at.number_input(key="explorer_seed").value == seed + 1 and shown_step(at) == (1, 50)
    assert shown_episode(at).labels != episode.labels and address(at)["seed"] == str(seed + 1)


def test_a_link_reproduces_a_generated_episode_at_its_step():
    at = explorer(source="glyphs", seed=3, samples=4, step=12)
    assert shown_step(at) == (12, 20)
    expected = episode_from_pool(sample_glyph_pool(40, 10, 3), 5, 4, 3)
    episode = shown_episode(at)
    assert episode.labels == expected.labels and all(torch.equal(a, b) for a, b in zip(episode.images, expected.images))
    assert at.number_input(key="explorer_seed").value == 3 and at.slider(key="explorer_samples").value == 4
    assert address(at) == {"source": "glyphs", "seed": "3", "samples": "4", "labels": "5", "step": "12", "shuffle": "0",
                           "show": "Read,Memories", "flmn": FLMN, "mann": MANN}


def test_a_reload_keeps_the_episode_and_the_step():
    at = explorer()
    at.number_input(key="explorer_seed").set_value(7).run()
    step_slider(at).set_value(33).run()
    again = reload(at)
    assert shown_step(again) == (33, 50) and shown_episode(again).labels == shown_episode(at).labels


def test_the_link_keeps_the_memory_views():
    at = explorer(step=4, show="Controller,Addressing,nonsense")  # any order; an unknown name is left out
    assert at.button_group(key="explorer-views").value == ["Addressing", "Controller"]
    assert chart_names(at) == ["probabilities", f"{FLMN}-addressing", f"{FLMN}-controller", f"{MANN}-addressing",
                               f"{MANN}-controller"]
    at.button_group(key="explorer-views").set_value(["Memories"]).run()
    assert address(at)["show"] == "Memories"
    again = reload(at)
    assert shown_step(again) == (4, 50) and chart_names(again) == [
        "probabilities", f"{FLMN}-feature_memory", f"{FLMN}-label_memory", f"{MANN}-memory"]
    at.button_group(key="explorer-views").set_value([]).run()
    assert address(at)["show"] == "" and chart_names(reload(at)) == ["probabilities"]


@pytest.mark.parametrize("params, step", [({"source": "nonsense", "step": "x"}, (1, 50)),
                                          ({"source": "glyphs", "step": "999", "samples": "0"}, (5, 5)),
                                          ({"seed": "-4", "step": "-1"}, (1, 50))])
def test_a_broken_link_shows_the_nearest_view(params, step):
    at = explorer(**params)
    assert not at.error and shown_step(at) == step


def drawing(character, drawer):
    return render(make_alphabet(3, seed=7)[character], drawer_seed=drawer)


def test_this_sessions_episode_survives_a_reload(monkeypatch):
    canvas = fake_canvas.install(monkeypatch)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    for character, value in ((0, 1), (1, 2), (0, 1)):
        canvas.draw(drawing(character, value + character))
        at.run()
        at.button(key=f"label-{value - 1}").click().run()
    taught = at.session_state["episode"]
    at.switch_page(EXPLORER).run()
    assert at.radio(key="explorer_source").value == "session" and shown_step(at) == (1, 3)
    step_slider(at).set_value(3).run()
    assert address(at)["source"] == "session" and address(at)["episode"]

    again = reload(at)
    assert not again.exception and shown_step(again) == (3, 3)
    restored = again.session_state["episode"]
    assert restored.labels == taught.labels and all(torch.equal(a, b) for a, b in zip(restored.images, taught.images))
    stranger = explorer(source="session", episode="not-a-token")  # a made-up link reaches no one's episode
    assert "empty" in texts(stranger.info)


def test_the_explorer_samples_the_real_data_sets_from_a_link(omniglot):
    for source in ("omniglot", "mnist"):
        at = explorer(source=source, seed=2, step=7)  # the omniglot fixture filled this session's cache
        assert not at.error and not at.info and shown_step(at) == (7, 50)


def test_the_label_shuffle_replay_shows_what_flmn_core_computes():
    at = explorer(seed=5)
    episode = shown_episode(at)
    permutation = derangement(5, 0)
    assert f"1 → {permutation[0] + 1}" in texts(at.markdown)
    table = next(m.value for m in at.markdown if m.value.startswith("| model | labels"))
    for name in SHIPPED:
        replay = label_shuffle_replay(load_model(zoo.weights_path(name)), episode.images, episode.labels, permutation)
        for which, (correct, total) in zip(("original", "permuted"), replay.instance_accuracy(10)):
            row = next(line for line in table.splitlines() if line.startswith(f"| {name} | {which} |"))
            assert row.split(" | ")[2:12] == [f"{c}/{n}" for c, n in zip(correct, total)]
        assert f"{100 * replay.agreement():.0f}% of steps" in table
    at.button(key="explorer_shuffle_again").click().run()
    assert address(at)["shuffle"] == "1" and f"1 → {derangement(5, 1)[0] + 1}" in texts(at.markdown)
    again = reload(at)
    assert f"1 → {derangement(5, 1)[0] + 1}" in texts(again.markdown)  # the link keeps the permutation too


@pytest.mark.slow  # Omniglot's 32,460 drawings read and preprocessed from the downloaded zips: about a minute
def test_the_download_button_fetches_omniglots_zips_from_their_server(file_server, data_dir, no_data, monkeypatch):
    monkeypatch.setattr(data_sources, "OMNIGLOT_URL", file_server + "/omniglot/{name}.zip")
    at = explorer()
    at.radio(key="explorer_source").set_value("omniglot").run()
    at.button(key="download-omniglot").click().run(timeout=900)  # a guard against a hang on a loaded machine
    assert not at.exception and not at.error, (at.exception, texts(at.error))
    for name in data_sources.OMNIGLOT_SETS:
        assert (no_data / "omniglot" / f"{name}.zip").read_bytes() == (data_dir / "omniglot" / f"{name}.zip").read_bytes()
    assert shown_step(at) == (1, 50) and not at.info
