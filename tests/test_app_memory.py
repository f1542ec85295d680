"""app_shared.memory.memory_panel_ui through AppTest: the panel draws the model's own step (the values in the
charts sent to the browser are the model's), names rows by their drawings, and its surgery changes the
prediction it shows the way flmn_core.interactive.surgery computes it, while the episode and the model stay as they were.

The panel runs in a small page of its own (panel_page) on the hand-made retrieving FLMN of
tests/memory_models.py, whose read lands on the row of the earlier drawing, or on a shipped checkpoint.
"""

import base64
import json

import numpy as np
import torch
from read_markup import parse as parse_read
from streamlit.testing.v1 import AppTest

from flmn_core.interactive import memory_rows, read_view, surgery
from flmn_core.model import zoo

FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name  # what the app shows first

TIMEOUT = 120  # seconds per run; the first imports torch
CHARTS = ("read", "addressing", "feature_memory", "label_memory", "controller")


def panel_page(source, pending):
    """A page with one panel: the retrieving FLMN taught characters 0, 1, 2 (labels 1, 2, 3) and shown 0
    again (step 4), or a shipped checkpoint taught 5 characters and shown the first again (step 6);
    pending: the last drawing is predicted and not labelled, as on the Teach page. The panel shows the
    last step, or step st.session_state["t"] (0-based), as the explorer's slider would choose it."""
    import streamlit as st
    from memory_models import distinct_drawings, retrieving_flmn

    from app_shared import memory as memory_panel
    from flmn_core import load_model
    from flmn_core.interactive.episode import InteractiveEpisode
    from flmn_core.model import zoo

    order = [0, 1, 2, 0] if source == "retriever" else [0, 1, 2, 3, 4, 0]
    if "episode" not in st.session_state:
        model = retrieving_flmn() if source == "retriever" else load_model(zoo.weights_path(source))
        images = distinct_drawings(model.config.classes)[order]
        shown = len(order) - 1 if pending else len(order)
        episode = InteractiveEpisode.from_sequence(images[:shown], order[:shown], model.config.classes)
        episode.sync({source: model})
        if pending:
            episode.predict({source: model}, images[-1])
        st.session_state.update(episode=episode, model=model)
    episode, model = st.session_state["episode"], st.session_state["model"]
    memory_panel.memory_panel_ui(episode, source, model, st.session_state.get("t", len(order) - 1), key="panel")


def start(source="retriever", pending=False, surgery_open=True):
    at = AppTest.from_function(panel_page, args=(source, pending), default_timeout=TIMEOUT)
    at.session_state["panel-surgery"] = surgery_open  # as if the person had opened the surgery section
    at.run()
    assert not at.exception, at.exception
    return at


def charts(at):
    """{chart name: its Plotly spec as sent to the browser} of the panel, after "read": the read's HTML
    as drawn (read_markup.DrawnRead), when shown."""
    shown = {"read": parse_read(html.proto.body) for html in at.get("html")
             if 'class="flmn-read"' in html.proto.body}
    return shown | {chart.proto.id.rsplit("panel-", 1)[1]: json.loads(chart.proto.spec)
                    for chart in at.get("plotly_chart")}


def values(encoded):
    """An array of a Plotly spec (base64 "bdata" with dtype and shape, or a plain list) -> numpy array."""
    if isinstance(encoded, dict):
        array = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"]))
        shape = [int(n) for n in str(encoded.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return np.asarray(encoded)


def surgery_text(at):
    return " ".join(m.value for m in at.markdown if "With the surgery" in m.value)


def test_the_panel_draws_the_models_step_with_rows_named_by_their_drawings():
    at = start()
    episode, model = at.session_state["episode"], at.session_state["model"]
    shown = charts(at)
    assert list(shown) == list(CHARTS)
    read = episode.runs["retriever"][3].state.read_weights[0, 0].numpy()
    top = np.argsort(-read, kind="stable")[: read_view.TOP_ROWS]
    np.testing.assert_allclose([bar.weight for bar in shown["read"].bars["row"][: read_view.TOP_ROWS]], read[top],
                               rtol=1e-6)
    assert shown["read"].bars["row"][0].name == "◆ x1 / label 1"
    memory = values(shown["feature_memory"]["data"][0]["z"])
    np.testing.assert_array_equal(memory, episode.runs["retriever"][3].state.feature_memory[0].numpy())
    assert shown["feature_memory"]["layout"]["yaxis"]["ticktext"] == ["0 · x1", "1 · x2", "2 · x3", "3 · x4"]
    logits = values(shown["controller"]["data"][1]["y"])
    np.testing.assert_allclose(logits, surgery.logits_of(model, episode.runs["retriever"][3].state)[0].numpy())
    assert at.multiselect(key="panel-rows").options[:2] == ["row 0 · x1, label 1", "row 1 · x2, label 2"]
    assert not surgery_text(at)


def test_wiping_the_row_it_retrieves_from_changes_the_prediction_shown_and_nothing_else():
    at = start()
    episode, model = at.session_state["episode"], at.session_state["model"]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    at.multiselect(key="panel-rows").set_value([0]).run()
    assert not at.exception, at.exception
    inputs = [(episode.images[t], episode.prev_label(t)) for t in range(4)]
    expected = surgery.edited_run(model, inputs, episode.runs["retriever"], surgery.Edit(step=3, wipe=(0,)))[3]
    assert expected.predicted != 0
    assert f"predicts **{expected.predicted + 1}**" in surgery_text(at) and "instead of **1** (100%)" in surgery_text(at)
    assert "row 0 wiped as step 4 began" in " ".join(c.value for c in at.caption)
    edited_read = charts(at)["read"].bars["row"][0]
    assert np.float32(edited_read.weight) == np.float32(expected.state.read_weights[0, 0].max())
    assert edited_read.name != "◆ x1 / label 1"
    assert episode.runs["retriever"][3].predicted == 0  # the episode keeps the model's own steps
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_a_closed_surgery_section_builds_no_controls_and_closing_it_drops_the_surgery():
    at = start(surgery_open=False)
    assert not at.multiselect and not at.slider  # nothing of the surgery is built while it is folded away
    model_read = charts(at)["read"].bars["row"][0]
    at.session_state["panel-surgery"] = True
    at.run()
    at.multiselect(key="panel-rows").set_value([0]).run()
    assert charts(at)["read"].bars["row"][0] != model_read and surgery_text(at)
    at.session_state["panel-surgery"] = False  # the person folds the section away
    at.run()
    assert charts(at)["read"].bars["row"][0] == model_read and not surgery_text(at)
    at.session_state["panel-surgery"] = True
    at.run()
    assert at.multiselect(key="panel-rows").value == []  # reopened, it starts from the model as it is


def test_the_rows_of_a_label_are_chosen_at_once_frozen_and_undone():
    at = start()
    at.selectbox(key="panel-label").set_value(0).run()  # label 1: x1 in row 0 and x4 in row 3
    assert at.multiselect(key="panel-rows").value == [0, 3]
    assert at.selectbox(key="panel-label").value is None  # ready to add another label's rows
    assert "rows 0, 3 wiped as step 4 began" in " ".join(c.value for c in at.caption)
    at.radio(key="panel-action").set_value("Freeze").run()
    assert "rows 0, 3 frozen from step 4 on" in " ".join(c.value for c in at.caption)
    assert "still predicts **1**" in surgery_text(at)  # frozen as step 4 began, they still hold x1 and its label
    at.button(key="panel-undo").click().run()
    assert at.multiselect(key="panel-rows").value == [] and not surgery_text(at)


def test_gamma_changes_live_in_a_copy_of_the_model():
    at = start(FLMN)
    episode, model = at.session_state["episode"], at.session_state["model"]
    at.slider(key="panel-gamma").set_value(0.5).run()
    assert not at.exception, at.exception
    assert "γ 0.50 for the whole episode" in " ".join(c.value for c in at.caption) and surgery_text(at)
    inputs = [(episode.images[t], episode.prev_label(t)) for t in range(6)]
    expected = surgery.edited_run(model, inputs, episode.runs[FLMN], surgery.Edit(gamma=0.5))[5]
    addressing = charts(at)["addressing"]
    usage = addressing["data"][addressing["layout"]["yaxis"]["ticktext"].index("usage")]
    np.testing.assert_allclose(values(usage["z"])[0], expected.state.usage[0].numpy(), rtol=1e-6)
    assert not np.allclose(expected.state.usage[0].numpy(), episode.runs[FLMN][5].state.usage[0].numpy())
    assert model.config.gamma == 0.95
    at.button(key="panel-undo").click().run()
    assert at.slider(key="panel-gamma").value == 0.95 and not surgery_text(at)


def test_the_pending_drawing_is_shown_before_its_label_for_both_kinds_of_model():
    for source, memories in ((FLMN, ("feature_memory", "label_memory")), (MANN, ("memory",))):
        at = start(source, pending=True)
        episode = at.session_state["episode"]
        assert len(episode) == 5 and episode.pending is not None
        shown = charts(at)
        assert list(shown) == ["read", "addressing", *memories, "controller"]
        step = episode.pending[1][source]
        rows = memory_rows.describe_steps(episode.runs[source] + [step], episode.labels)
        written = int((rows.writer == 5).nonzero()[0])  # the row of the pending drawing x6
        assert f"row {written} · x6, no label yet" in at.multiselect(key="panel-rows").options
        codes = values(shown[memories[0]]["data"][3]["z"]).ravel()
        assert codes[written] == 1  # drawn grey: a drawing whose label is not given yet


def test_rows_chosen_at_a_step_change_nothing_before_it():
    at = start()
    at.multiselect(key="panel-rows").set_value([1]).run()  # chosen at step 4
    assert "row 1 wiped as step 4 began" in " ".join(c.value for c in at.caption)
    at.session_state["t"] = 2  # back to step 3, as the explorer's slider would go
    at.run()
    assert "wiped or frozen from step 4 on, after this step" in " ".join(c.value for c in at.caption)
    assert not surgery_text(at)
    read = at.session_state["episode"].runs["retriever"][2].state.read_weights[0, 0].numpy()
    np.testing.assert_allclose(charts(at)["read"].bars["row"][0].weight, read.max(), rtol=1e-6)
