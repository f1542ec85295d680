"""The Streamlit app through AppTest (no browser), with the shipped checkpoints: every page renders, a
drawing on the canvas (a fake canvas module, tests/fake_canvas.py, stands in for the component, so the page
runs its real canvas code) is predicted, labelled, undone, deleted and reset, the newest input wins, episodes
are saved and loaded, and bad input (blank drawings, non-images, bad episode files, a broken checkpoint,
missing data) gets a message while the episode so far is kept."""

import base64
import gc
import io
import json
import re
import shutil

import fake_canvas
import numpy as np
import pytest
import torch
from app_steps import label, markdown_sources, show, start, texts
from PIL import Image

from flmn_core import build_model, load_model, save_checkpoint
from flmn_core.data.episodes import offset_labels
from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.episode_file import read_episode_file
from flmn_core.interactive.examples import EXAMPLE_PATH
from flmn_core.interactive.uploads import MAX_UPLOAD_BYTES, image_from_canvas, prepare
from flmn_core.model import zoo

PAGES = {"explorer": "app_pages/explorer.py", "results": "app_pages/results.py", "how": "app_pages/how_it_works.py",
         "teach": "app_pages/teach.py"}
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name


def drawing(character, drawer):
    """A drawing of a generated character: uint8 [105, 105], black ink on white, as a picture array."""
    return render(make_alphabet(3, seed=7)[character], drawer_seed=drawer)


def png_bytes(array):
    """A PNG file of an array (uint16 [H, W] gives a 16-bit grayscale PNG)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def canvas(monkeypatch):
    """The fake canvas the pages draw in these tests (AppTest cannot draw on the real one)."""
    return fake_canvas.install(monkeypatch)


def strip_html(at):
    """The HTML of the Teach page's episode strip ('' when the episode is empty)."""
    return " ".join(str(h.proto.body) for h in at.get("html") if str(h.proto.body).startswith('<div class="flmn-strip"'))


def predictions(at):
    """The Teach page's lines of predictions, as text: '■ flmn-conv predicts 2 (87%)', one per model."""
    return [re.sub(r"<[^>]+>", "", line) for h in at.get("html") if 'class="flmn-predictions"' in str(h.proto.body)
            for line in str(h.proto.body).split("<br/>")]


def predicts(at, name):
    """Whether the Teach page shows model `name`'s prediction."""
    return any(line.startswith(f"■ {name} predicts ") for line in predictions(at))


def strip_steps(at):
    """How many steps the Teach page's episode strip shows."""
    return strip_html(at).count('class="flmn-step')


@pytest.fixture
def checkpoint_copy(tmp_path, monkeypatch):
    """A checkpoint folder with copies of the shipped Experiment I checkpoints, made the app's."""
    for name in SHIPPED:
        shutil.copy(zoo.weights_path(name), tmp_path / f"{name}.pt")
    monkeypatch.setenv("FLMN_CHECKPOINT_DIR", str(tmp_path))
    return tmp_path


def test_every_page_renders_with_the_shipped_checkpoints():
    at = start()
    assert at.title[0].value.startswith("Teach")
    assert at.selectbox(key="checkpoint_flmn").value.name == FLMN
    assert at.selectbox(key="checkpoint_mann").value.name == MANN
    assert not at.error and "Draw a character" in texts(at.info)
    assert all(b.disabled for b in at.button if b.key and b.key.startswith("label-"))
    for page, title in (("explorer", "Episode explorer"), ("results", "Results"), ("how", "How it works")):
        at.switch_page(PAGES[page]).run()
        assert not at.exception, at.exception
        assert at.title[0].value == title
    assert len(at.latex) == 15  # the offset, nine memory equations, flmn-retrieve's four changes, the encoder
    assert "def cosine_similarity" in texts(at.code)  # beside the code that computes them


def test_after_its_first_run_the_server_keeps_its_long_lived_objects_out_of_the_collector():
    """Streamlit collects all garbage after every run; the app freezes what lives as long as the server
    (torch, Plotly, the models) once, so those collections stay short (README: Speed of the app)."""
    from app_shared import frame  # the very module the app's runs use: AppTest runs them in this process
    gc.unfreeze()
    frame.freeze_long_lived_objects.cache_clear()  # as in a new server process
    start()
    assert gc.get_freeze_count() > 100_000  # torch alone brings more


def model_probabilities(name, images, labels):
    """What a checkpoint predicts over a whole sequence of images [T, 20, 20] and labels [T]: [T, C]."""
    model = load_model(zoo.weights_path(name))
    with torch.no_grad():
        return torch.softmax(model(images[None], offset_labels(labels[None], 5))[0], -1)


def test_teaching_through_the_page_matches_the_models_on_the_whole_sequence(canvas):
    at = start()
    pictures = [drawing(0, 1), drawing(1, 1), drawing(0, 2), drawing(2, 1)]
    given = [1, 2, 1, 3]
    for step, (picture, value) in enumerate(zip(pictures, given), start=1):
        shown_on = canvas.key
        show(at, canvas, picture, strokes=2)
        assert predicts(at, FLMN) and predicts(at, MANN)
        assert f"Step {step}: draw one character" in texts(at.markdown) and "From 2 strokes on the canvas" in texts(at.caption)
        assert not at.button(key=f"label-{value - 1}").disabled
        label(at, value)
        assert canvas.key != shown_on and "From 2 strokes" not in texts(at.caption)  # a fresh, empty canvas
        assert all(at.button(key=f"label-{c}").disabled for c in range(5))
        assert strip_steps(at) == step
    episode = at.session_state["episode"]
    assert episode.labels == [v - 1 for v in given]
    images, labels = torch.stack(episode.images), torch.tensor(episode.labels)
    (last_drawing, _), = canvas.drawings.values()  # the fake keeps the last drawing only
    torch.testing.assert_close(images[-1], prepare(image_from_canvas(last_drawing)))
    for name in SHIPPED:
        torch.testing.assert_close(episode.probabilities(name), model_probabilities(name, images, labels),
                                   rtol=1e-5, atol=1e-6)
    assert f"| {FLMN} |" in texts(at.markdown)  # the running accuracy table

    at.text_input(key="class_names_text").set_value("alpha, beta,, delta").run()
    assert at.session_state["episode"].class_names == ["alpha", "beta", "", "delta", ""]
    assert at.button(key="label-1").label == "Label 2 (beta)" and "label 1 (alpha)" in strip_html(at)

    at.button(key="undo").click().run()
    assert len(at.session_state["episode"]) == 3 and strip_steps(at) == 3
    at.button(key="reset-confirm").click().run()
    assert len(at.session_state["episode"]) == 0 and strip_steps(at) == 0


def test_clear_gives_a_fresh_canvas_and_drops_the_upload(canvas):
    at = start()
    upload_on_teach_page(at, "one.png", png_bytes(drawing(1, 1)))
    show(at, canvas, drawing(0, 1))
    drawn_on, uploader = canvas.key, f"upload-{at.session_state['canvas_round']}"
    at.button(key="clear").click().run()
    assert canvas.key != drawn_on and not at.file_uploader(key=f"upload-{at.session_state['canvas_round']}").value
    assert uploader != f"upload-{at.session_state['canvas_round']}"
    assert "Draw a character on the canvas" in texts(at.info) and at.button(key="label-0").disabled


def test_the_newest_input_wins_and_the_page_says_which(canvas):
    at = start()
    show(at, canvas, drawing(0, 1))
    upload_on_teach_page(at, "photo.png", png_bytes(drawing(1, 2)))
    assert "From the uploaded picture, photo.png (draw on the canvas to use your drawing instead)" in texts(at.caption)
    torch.testing.assert_close(at.session_state["episode"].pending[0], prepare(drawing(1, 2)))
    show(at, canvas, drawing(2, 3), strokes=2)  # more strokes after the upload: the drawing takes over
    assert "From 2 strokes on the canvas (photo.png is set aside" in texts(at.caption)
    torch.testing.assert_close(at.session_state["episode"].pending[0], prepare(image_from_canvas(
        canvas.drawings[canvas.key][0])))
    label(at, 3)
    torch.testing.assert_close(at.session_state["episode"].images[0], prepare(image_from_canvas(
        canvas.drawings[canvas.calls[-2]["key"]][0])))


@pytest.mark.parametrize("picture", [np.full((280, 280, 4), 255, np.uint8), np.zeros((280, 280, 4), np.uint8),
                                     np.full((50, 50), 128, np.uint8)])
def test_a_blank_drawing_asks_for_ink_and_keeps_the_episode(canvas, picture):
    at = start()
    show(at, canvas, drawing(0, 1))
    label(at, 1)
    show(at, canvas, picture)
    assert "empty" in texts(at.warning)
    assert all(at.button(key=f"label-{c}").disabled for c in range(5))
    assert len(at.session_state["episode"]) == 1 and strip_steps(at) == 1


def upload_on_teach_page(at, name, data):
    key = f"upload-{at.session_state['canvas_round']}"  # a fresh uploader after each labelled step
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception


@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"this is a text file, not a picture", "not an image"),
    ("cut.png", png_bytes(drawing(0, 1))[:200], "damaged or incomplete"),
    ("huge.png", png_bytes(np.zeros((5000, 5000), np.uint8)), "the limit is"),
    ("six.png", png_bytes(drawing(0, 1)) + bytes(MAX_UPLOAD_BYTES + (1 << 20)), "the limit is 5 MB"),
])
def test_a_bad_upload_is_refused_on_the_page_and_the_episode_kept(canvas, name, data, message):
    at = start()
    show(at, canvas, drawing(0, 1))
    label(at, 1)
    upload_on_teach_page(at, "good.png", png_bytes(drawing(1, 1)))
    assert "From the uploaded picture, good.png" in texts(at.caption)
    at.file_uploader(key=f"upload-{at.session_state['canvas_round']}").set_value(
        (name, data, "application/octet-stream")).run()
    assert message in texts(at.error) and name in texts(at.error)
    assert "good.png" not in texts(at.caption)  # the previous file's note went with it
    assert all(at.button(key=f"label-{c}").disabled for c in range(5))
    assert len(at.session_state["episode"]) == 1 and strip_steps(at) == 1


def test_uploads_of_16_bit_and_transparent_pngs_are_predicted():
    ink = drawing(1, 3)
    sixteen = png_bytes(ink.astype(np.uint16) * 257)
    assert Image.open(io.BytesIO(sixteen)).mode.startswith("I")
    rgba = np.zeros((105, 105, 4), np.uint8)
    rgba[..., 3] = 255 - ink  # ink opaque, background fully transparent
    for name, data in (("deep.png", sixteen), ("clear.png", png_bytes(rgba))):
        at = start()
        upload_on_teach_page(at, name, data)
        assert not at.error and "From the uploaded picture" in texts(at.caption)
        assert predicts(at, FLMN)
        label(at, 2)
        assert at.session_state["episode"].labels == [1]


def per_label(at):
    """The per-label view: {label 1..C: count} from each label's heading."""
    return {int(m[0]): int(m[1]) for m in re.findall(r"\*\*Label (\d)[^*]*\*\* · (\d+)", texts(at.markdown))}


@pytest.mark.parametrize("given", [[1, 2, 1, 2, 2], [1, 2, 3, 4, 5, 3, 1]], ids=["2 labels", "5 labels"])
def test_the_per_label_view_counts_and_deletes_any_drawing(canvas, given):
    at = start()
    for step, value in enumerate(given):
        show(at, canvas, drawing(value % 3, step))
        label(at, value)
    assert per_label(at) == {v: given.count(v) for v in set(given)}
    assert f"{len(set(given))} of 5 labels in use" in texts(at.markdown)
    episode = at.session_state["episode"]
    kept_images, kept_labels = episode.images[:1] + episode.images[2:], episode.labels[:1] + episode.labels[2:]
    at.button_group(key=f"delete-{given[1] - 1}").set_value(1).run()  # the 2nd drawing, mid-episode
    assert not at.exception, at.exception
    remaining = given[:1] + given[2:]
    assert episode.labels == kept_labels and per_label(at) == {v: remaining.count(v) for v in set(remaining)}
    assert strip_steps(at) == len(remaining)
    pills = [group for group in at.button_group if group.key.startswith("delete-")]
    assert pills and all(group.value is None for group in pills)  # no stale choice among the shifted steps
    for name in SHIPPED:  # the later steps were replayed without it, from their new previous labels
        torch.testing.assert_close(episode.probabilities(name), model_probabilities(
            name, torch.stack(kept_images), torch.tensor(kept_labels)), rtol=1e-5, atol=1e-6)


def unescaped(text):
    """The characters of text that Markdown, Streamlit's directives or LaTeX act on, unless escaped."""
    return re.findall(r"(?<!\\)[][!<>*$:`_~|]", text)


def test_label_names_are_shown_as_typed_never_as_markdown(canvas):
    at = start()
    names = "![i](http://127.0.0.1:1/x.png), <a href='http://127.0.0.1:1/'>x</a>, :red[r] $x$ **b**"
    at.text_input(key="class_names_text").set_value(names).run()
    show(at, canvas, drawing(0, 1))
    label(at, 2)
    show(at, canvas, drawing(0, 2))
    buttons = [at.button(key=f"label-{c}").label for c in range(5)]
    # shows as ![i](http://127.0.0.1:1/x.png), a word joiner keeping the address from becoming a link
    assert buttons[0] == r"Label 1 (\!\[i\](http" + "\u2060" + r"\://127.0.0.1\:1/x.png))"
    assert all(unescaped(text) == [] for text in buttons), buttons
    per_label = r"**Label 2 (\<a href='http" + "\u2060" + r"\://127.0.0.1\:1/'\>x\</a\>)** · 1"
    assert per_label in markdown_sources(at.markdown)
    assert "label 2 (&lt;a href=&#x27;http://127.0.0.1:1/&#x27;&gt;x&lt;/a&gt;)" in strip_html(at)  # the strip


def save_data(at):
    """The data the Teach page's save button (app_shared.download) was last drawn with."""
    button, = [c for c in at.get("bidi_component") if c.proto.id.endswith("teach-save")]
    return json.loads(button.proto.json)


def test_save_sends_the_episode_as_it_is_when_asked_and_only_then(canvas):
    at = start()
    assert save_data(at)["disabled"] and save_data(at)["file"] is None  # nothing to save yet
    for step, value in enumerate([1, 2, 1]):
        show(at, canvas, drawing(value, step))
        label(at, value)
    assert not save_data(at)["disabled"] and save_data(at)["file"] is None  # no file before a click
    at.session_state["teach-save-asked"] = "click-1"  # what the click's callback leaves for the run it starts
    at.run()
    data = save_data(at)
    assert data["request"] == "click-1" and data["name"] == "flmn-episode.npz"
    saved = InteractiveEpisode.load(base64.b64decode(data["file"]))
    assert saved.labels == [0, 1, 0] and set(saved.recorded) == set(SHIPPED)
    show(at, canvas, drawing(2, 9))  # the next run sends no file again: the browser saves each click once
    assert save_data(at)["file"] is None and save_data(at)["request"] is None


def test_episode_files_load_on_any_page_and_bad_ones_keep_the_episode(canvas):
    at = start()
    at.text_input(key="class_names_text").set_value("one, two").run()
    for picture, value in ((drawing(0, 1), 1), (drawing(1, 1), 2)):
        show(at, canvas, picture)
        label(at, value)
    saved = at.session_state["episode"].to_bytes()

    other = start()
    other.switch_page(PAGES["explorer"]).run()
    other.file_uploader(key="episode_upload_0").set_value(("mine.npz", saved, "application/octet-stream")).run()
    assert "Loaded mine.npz: 2 steps" in texts(other.sidebar.success)
    assert "Step 1 of 2" in texts(other.markdown)  # the explorer shows the loaded episode
    loaded = other.session_state["episode"]
    assert loaded.changed_predictions() == {FLMN: 0, MANN: 0}
    other.switch_page(PAGES["teach"]).run()  # and it goes on on the Teach page, with its label names
    assert other.text_input(key="class_names_text").value == "one, two" and strip_steps(other) == 2

    bad = InteractiveEpisode.load(saved)
    with np.load(io.BytesIO(saved)) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["labels"] = np.array([0, 6])  # label 7 of 5
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    for name, data, message in (("bad-label.npz", buffer.getvalue(), "label 7 is outside 1..5"),
                                ("photo.npz", png_bytes(drawing(0, 1)), "not a readable episode file")):
        other.file_uploader(key="episode_upload_1").set_value((name, data, "application/octet-stream")).run()
        assert message in texts(other.sidebar.error) and "episode so far is kept" in texts(other.sidebar.error)
        assert other.session_state["episode"].labels == bad.labels == [0, 1]


def test_the_example_episode_loads_as_its_file_does_and_asks_before_replacing_one(canvas):
    at = start()
    show(at, canvas, drawing(0, 1))  # a drawing predicted from empty memories: the example replaces it too
    drawn_on = canvas.key
    at.button(key="example").click().run()
    assert not at.exception, at.exception
    example = read_episode_file(EXAMPLE_PATH)
    episode = at.session_state["episode"]
    assert episode.labels == example.labels.tolist() and episode.pending is None and canvas.key != drawn_on
    images, labels = torch.from_numpy(example.images), torch.from_numpy(example.labels)
    for name in SHIPPED:  # both models replayed the file's episode
        torch.testing.assert_close(episode.probabilities(name), model_probabilities(name, images, labels),
                                   rtol=1e-5, atol=1e-6)
    assert strip_steps(at) == len(example.labels)
    assert f"Loaded the example episode: {len(example.labels)} steps" in texts(at.sidebar.success)

    show(at, canvas, drawing(1, 1))
    label(at, 2)
    assert len(at.session_state["episode"]) == len(example.labels) + 1
    at.button(key="example-confirm").click().run()  # behind "Load the example episode…" once there is an episode
    assert not at.exception, at.exception
    assert at.session_state["episode"].labels == example.labels.tolist() and strip_steps(at) == len(example.labels)


def test_a_checkpoint_that_fails_to_load_leaves_the_rest_working(checkpoint_copy, canvas):
    (checkpoint_copy / f"{FLMN}.pt").write_bytes(b"PK\x03\x04 truncated")
    at = start()
    assert f"{FLMN} could not be loaded" in texts(at.error) and "truncated or corrupt" in texts(at.error)
    show(at, canvas, drawing(0, 1))
    assert predicts(at, MANN) and not predicts(at, FLMN)
    label(at, 1)
    assert len(at.session_state["episode"]) == 1
    for page in ("explorer", "results", "how"):
        at.switch_page(PAGES[page]).run()
        assert not at.exception and f"{FLMN} could not be loaded" in texts(at.error)


def test_the_results_page_draws_what_the_result_files_hold(checkpoint_copy):
    at = start()
    at.switch_page(PAGES["results"]).run()
    assert "No evaluation results" in texts(at.info)
    result = {"dataset": "omniglot", "split": "test", "episodes": 1234, "accuracy": [0.3 + 0.05 * k for k in range(10)],
              "ci95": [0.01] * 10, "retrieval": {"top_hit": 0.876, "top_hit_ci95": 0.002, "mass": 0.5432,
                                                 "mass_ci95": 0.001, "focus": 0.8}}
    (checkpoint_copy / "results").mkdir()
    (checkpoint_copy / "results" / f"{FLMN}-omniglot.json").write_text(json.dumps(result))
    at.run()
    assert not at.exception and "No evaluation results" not in texts(at.info)
    assert "35.0 ± 1.0" in texts(at.markdown) and "1,234 episodes" in texts(at.markdown)
    assert "87.6 ± 0.2" in texts(at.markdown) and "0.543 ± 0.001" in texts(at.markdown)  # the retrieval table
    assert len(at.get("plotly_chart")) == 1  # Omniglot's per-instance plot; nothing for MNIST


def test_a_replaced_checkpoint_is_reloaded_and_a_loaded_episode_says_it_changed(checkpoint_copy, canvas):
    at = start()
    for picture, value in ((drawing(0, 1), 1), (drawing(1, 1), 2), (drawing(0, 2), 1)):
        show(at, canvas, picture)
        label(at, value)
    saved = at.session_state["episode"].to_bytes()
    torch.manual_seed(0)
    save_checkpoint(checkpoint_copy / f"{FLMN}.pt", build_model("flmn"), step=0)  # retrained, say
    at.run()  # a label reruns only the Teach page's fragments, and AppTest then lists only their elements
    at.file_uploader(key="episode_upload_0").set_value(("old.npz", saved, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert f"{FLMN} now predicts" in texts(at.info) and f"{MANN} now predicts" not in texts(at.info)
    episode = at.session_state["episode"]
    assert episode.changed_predictions()[FLMN] > 0 and episode.changed_predictions()[MANN] == 0
