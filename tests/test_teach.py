"""The Teach page's address, labels and first steps through AppTest (no browser): a reload of its address
brings back the episode, the drawing not labelled yet and its strokes; a link chooses the checkpoints; the
teacher chooses 2 to 15 labels and the page follows (buttons, keys, the per-label view); an episode file of
any number of labels is run or refused at the door with a message, never half-loaded; the read panel states
nothing it cannot know yet; a character to copy."""

import re
import shutil
from pathlib import Path

import fake_canvas
import pytest
import streamlit as st
import torch
from app_steps import label, show, start, texts
from page_address import address

from app_shared import frame
from app_shared.sources import GLYPH_CHARACTERS, GLYPH_DRAWINGS
from flmn_core import build_model, save_checkpoint, split_indices
from flmn_core.data.glyphs import make_alphabet, render, sample_glyph_pool
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.uploads import image_from_canvas, prepare
from flmn_core.model import zoo

SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name


def drawing(character, drawer):
    return render(make_alphabet(15, seed=7)[character], drawer_seed=drawer)


@pytest.fixture(autouse=True)
def canvas(monkeypatch):
    return fake_canvas.install(monkeypatch)


def label_buttons(at):
    return [b for b in at.button if b.key and b.key.startswith("label-")]


def html_text(at, cls):
    """The text of the page's HTML elements of a class (tags dropped)."""
    return " ".join(re.sub(r"<[^>]+>", " ", str(h.proto.body)) for h in at.get("html") if f'class="{cls}' in str(h.proto.body))


@pytest.fixture
def fifteen_labels(tmp_path, monkeypatch):
    """A checkpoint folder whose default FLMN and MANN tell 15 labels apart (random weights: the page's
    layout and plumbing are under test, not what the models learned)."""
    torch.manual_seed(0)
    for name, kind in ((FLMN, "flmn"), (MANN, "mann")):
        save_checkpoint(tmp_path / f"{name}.pt", build_model(kind, classes=15), step=0)
    monkeypatch.setenv("FLMN_CHECKPOINT_DIR", str(tmp_path))
    st.cache_resource.clear()
    return tmp_path


# ----------------------------------------------------------------------------------------------------
# The address


def test_a_reload_brings_back_the_episode_and_the_drawing_not_labelled_yet(canvas):
    at = start()
    for step, value in enumerate([1, 2]):
        show(at, canvas, drawing(value, step), strokes=2)
        label(at, value)
    pending = drawing(1, 9)
    show(at, canvas, pending, strokes=3)
    link = address(at)
    assert set(link) == {"episode", "labels", "flmn", "mann"} and link["labels"] == "5"
    assert (link["flmn"], link["mann"]) == SHIPPED
    taught = at.session_state["episode"]

    again = start(**link)  # a reload: a new session on the same address
    restored = again.session_state["episode"]
    assert restored.labels == taught.labels == [0, 1]
    assert all(torch.equal(a, b) for a, b in zip(restored.images, taught.images))
    assert "Step 3: draw one character" in texts(again.markdown)
    assert "From the 3 strokes drawn before the page was reloaded" in texts(again.caption)
    torch.testing.assert_close(restored.pending[0], prepare(image_from_canvas(canvas.drawings[canvas.calls[-2]["key"]][0])))
    assert canvas.calls[-1]["initial_drawing"] == {"objects": [{"type": "path"}] * 3}  # its strokes, on the canvas
    assert not again.button(key="label-1").disabled
    label(again, 2)  # and it can be labelled as it is
    assert again.session_state["episode"].labels == [0, 1, 1]
    again.run()  # a label reruns the page's fragments only; AppTest then lists only their elements
    assert address(again)["episode"] == link["episode"]

    stranger = start(episode="not-a-token")  # a made-up token reaches no one's episode
    assert len(stranger.session_state["episode"]) == 0


def test_a_link_chooses_the_checkpoints_and_every_page_carries_them():
    other = next(c.name for c in zoo.available() if c.model == "flmn" and c.name != FLMN)
    at = start(flmn=other)
    assert at.selectbox(key="checkpoint_flmn").value.name == other and set(at.session_state["models"]) == {other, MANN}
    assert address(at)["flmn"] == other
    for page in ("app_pages/explorer.py", "app_pages/play.py"):
        at.switch_page(page).run()
        assert not at.exception and address(at)["flmn"] == other and address(at)["mann"] == MANN
    assert start(flmn="nonsense").selectbox(key="checkpoint_flmn").value.name == FLMN  # an unknown name: the default


# ----------------------------------------------------------------------------------------------------
# Labels


def test_the_teacher_chooses_how_many_labels_and_the_page_follows(canvas):
    at = start()
    assert len(label_buttons(at)) == 5
    at.number_input(key="teach_classes").set_value(3).run()
    assert not at.exception and len(label_buttons(at)) == 3 and address(at)["labels"] == "3"
    show(at, canvas, drawing(0, 1))
    label(at, 3)
    at.run()  # the whole page (a label reruns its fragments only), the sidebar's box with it
    at.number_input(key="teach_classes").set_value(2).run()  # label 3 is given: the episode keeps 3 labels
    assert "label 3 is given in this episode" in texts(at.error) and len(label_buttons(at)) == 3
    assert at.number_input(key="teach_classes").value == 3
    assert at.number_input(key="teach_classes").max == 5  # the shipped checkpoints tell 5 labels apart
    assert start(labels=4).session_state["episode"].classes == 4  # a link of a number of labels
    assert start(labels=99).session_state["episode"].classes == 5  # never more than the models tell apart


def test_fifteen_labels_get_buttons_keys_and_views_that_scale(canvas, fifteen_labels):
    at = start(labels=15)
    buttons = label_buttons(at)
    assert len(buttons) == 15 and [b.label for b in buttons[8:11]] == ["9", "10", "11"]  # numbers, in two columns
    shortcuts = [b.proto.shortcut for b in buttons]
    assert shortcuts[:10] == [str(k) for k in range(1, 10)] + ["0"] and [s.lower() for s in shortcuts[10:]] == [
        f"shift+{k}" for k in range(1, 6)]
    for step, value in enumerate([1, 12, 15, 12]):
        show(at, canvas, drawing(value - 1, step))
        label(at, value)
    assert at.session_state["episode"].labels == [0, 11, 14, 11]
    assert "3 of 15 labels in use" in texts(at.markdown)
    assert {c.key for c in at.get("flex_container") if c.key and c.key.startswith("teach-class-")} >= {
        "teach-class-0", "teach-class-11", "teach-class-14"}
    show(at, canvas, drawing(11, 20))
    read = html_text(at, "flmn-read")
    assert "by label" in read and " 15 " in read  # the by-label bars, named by number past 8 labels


def test_an_episode_file_of_any_labels_is_run_or_refused_at_the_door(canvas):
    """Of 3 labels: it runs on the 5-label checkpoints (and goes on on the page). Of 12: refused with a
    message, the episode so far kept (before, it loaded and then broke the memory panel and the next step)."""
    torch.manual_seed(0)
    small = {"m": build_model("flmn", classes=12, controller_size=12, memory_rows=8, word_size=6).eval()}
    files = {}
    for classes, labels in ((3, [0, 2, 1]), (12, [0, 11, 5])):
        episode = InteractiveEpisode(classes)
        for label_ in labels:
            episode.predict(small, prepare(drawing(label_, label_)))
            episode.commit(label_)
        files[classes] = episode.to_bytes()
    at = start()
    show(at, canvas, drawing(0, 1))
    label(at, 1)
    at.run()  # the whole page (a label reruns its fragments only), the sidebar's uploader with it
    at.file_uploader(key="episode_upload_0").set_value(("twelve.npz", files[12], "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert "twelve.npz: its episode uses 12 labels and the checkpoints chosen tell at most 5 apart" in texts(at.sidebar.error)
    assert at.session_state["episode"].labels == [0]
    at.file_uploader(key="episode_upload_0").set_value(("three.npz", files[3], "application/octet-stream")).run()
    assert not at.exception and "Loaded three.npz: 3 steps, 3 labels" in texts(at.sidebar.success)
    assert len(label_buttons(at)) == 3 and at.session_state["episode"].labels == [0, 2, 1]
    show(at, canvas, drawing(1, 5))  # the memory views and the next step work
    assert not at.exception and "flmn-read" in " ".join(str(h.proto.body) for h in at.get("html"))
    label(at, 2)
    assert at.session_state["episode"].labels == [0, 2, 1, 1]


def test_checkpoints_of_fewer_labels_than_the_episode_say_so_and_keep_it(canvas, fifteen_labels):
    at = start(labels=12)
    show(at, canvas, drawing(11, 1))
    label(at, 12)
    shutil.copy(zoo.weights_path(FLMN, Path(__file__).resolve().parents[1] / zoo.FOLDER), fifteen_labels / f"{FLMN}.pt")
    st.cache_resource.clear()
    at.run()
    assert not at.exception, at.exception
    assert f"{FLMN} tells 5 labels apart and this episode uses 12" in texts(at.error)
    assert at.session_state["episode"].labels == [11]


# ----------------------------------------------------------------------------------------------------
# What the page states


def test_before_a_label_the_read_says_its_class_is_not_known_and_after_it_gives_the_number(canvas):
    at = start()
    show(at, canvas, drawing(0, 1))
    label(at, 1)
    show(at, canvas, drawing(0, 2))  # the same character again, not labelled yet
    before = html_text(at, "flmn-read")
    assert before.count("on ◆ rows: known once the label is given") == 2 and "on ◆ rows 0" not in before
    assert "which rows hold its class is not known yet" in texts(at.caption)
    label(at, 1)
    after = html_text(at, "flmn-read")
    assert "known once" not in after and after.count("on ◆ rows ") == 2
    assert "◆ marks the rows holding earlier drawings" in texts(at.caption)


def test_the_server_time_is_out_of_a_students_way(canvas):
    at = start()
    show(at, canvas, drawing(0, 1))
    developers, = [e for e in at.expander if e.label == "For developers"]  # folded, low on the page
    assert "Server time for the last update" in texts(developers.caption)
    assert texts(at.main.caption).count("Server time") == 1  # there only


def test_a_character_to_copy_without_data_is_a_generated_one(canvas, tmp_path, monkeypatch):
    monkeypatch.setenv("FLMN_DATA_DIR", str(tmp_path))  # no Omniglot here
    st.cache_resource.clear()
    at = start()
    at.toggle(key="teach_copy").set_value(True).run()
    assert not at.exception, at.exception
    prompt = texts(at.markdown)
    assert "Copy this character, then give it label" in prompt and "A generated character" in texts(at.caption)
    pool = sample_glyph_pool(GLYPH_CHARACTERS, GLYPH_DRAWINGS, at.session_state["teach_copy_seed"])
    assert copied(at) in {frame.data_uri(image) for image in pool.flatten(0, 1)}  # one of its drawings
    labels_asked = []
    for step in range(6):  # each of the 5 characters first, one label each, then any of them again
        label_asked = int(texts(at.markdown).split("give it label **")[1][0]) - 1
        labels_asked.append(label_asked)
        show(at, canvas, drawing(label_asked, step))
        label(at, label_asked + 1)
    assert sorted(labels_asked[:5]) == [0, 1, 2, 3, 4] and labels_asked[5] in range(5)


def test_a_character_to_copy_with_the_data_is_a_held_out_omniglot_one(canvas, omniglot):
    at = start()
    at.toggle(key="teach_copy").set_value(True).run()
    assert not at.exception, at.exception
    assert "A held-out Omniglot character" in texts(at.caption)
    test_characters = omniglot.images[split_indices("test")]
    assert copied(at) in {frame.data_uri(image) for image in test_characters.flatten(0, 1)}


def copied(at):
    """The data URI of the character the Teach page shows to copy."""
    shown, = [str(h.proto.body) for h in at.get("html") if str(h.proto.body).startswith('<figure class="flmn-pixels flmn-smooth"')]
    return re.search(r'src="([^"]+)"', shown).group(1)
