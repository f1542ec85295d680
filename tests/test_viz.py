"""Figures from the real traces of the models: the memory view shows the models' true values on fixed
scales (a near-uniform read looks pale), names each row by the drawing it holds, marks the rows of the
step's label, and stays light and valid for every model variant; the other figures show their data."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import read_markup
import torch
from memory_models import distinct_drawings, retrieving_flmn

from flmn_core import build_model, load_model
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.interactive import figures as step_figures
from flmn_core.interactive import memory_rows, protocol, read_view, surgery
from flmn_core.interactive.episode import InteractiveEpisode, episode_from_pool
from flmn_core.model import zoo
from flmn_core.results import figures as result_figures
from flmn_core.results import paper

TINY = dict(classes=3, controller_size=8, memory_rows=12, word_size=4)
VARIANTS = {
    "flmn": ("flmn", {}), "flmn-key-strength": ("flmn", dict(key_strength=True)),
    "flmn-read-first": ("flmn", dict(read_first=True)), "flmn-masked": ("flmn", dict(mask_empty_rows=True, read_first=True)),
    "flmn-null-row": ("flmn", dict(null_row=True, mask_empty_rows=True)),
    "flmn-label-rows-kept": ("flmn", dict(clear_label_rows=False, label_word_size=3)),
    "mann": ("mann", {}), "mann-4-heads-add": ("mann", dict(read_heads=4, write_content="add", key_strength=True)),
    "mann-null-row": ("mann", dict(null_row=True)),
}


def stepped_trace(kind, steps=4, **config):
    """A tiny model stepped a few times on random images -> (its last state and trace, the two as one dict
    of what the figures draw, FLMN's single head squeezed out)."""
    torch.manual_seed(0)
    model = build_model(kind, **TINY, **config)
    generator = torch.Generator().manual_seed(1)
    state = None
    with torch.no_grad():
        for t in range(steps):
            image = torch.rand(2, 20, 20, generator=generator)
            prev_label = torch.nn.functional.one_hot(torch.tensor([t % 3, (t + 1) % 3]), 3).float()
            _, state, trace = model.step(image, prev_label, state)
    values = state._asdict() | trace._asdict()
    if kind == "flmn":
        for key in ("read_weights", "least_used", "feature_write_weights"):
            values[key] = values[key][:, 0]
    return (state, trace), values


def taught(model, images, labels, classes):
    """An InteractiveEpisode of these steps, run by one model -> (episode, its Steps)."""
    episode = InteractiveEpisode.from_sequence(images, labels, classes)
    episode.sync({"model": model})
    return episode, episode.runs["model"]


def view_of(model, episode, steps, t, parts=None):
    """The memory view at step t (only `parts`, None: all) -> (figures, RowView); figures["read"] is the
    read's HTML (read_view) as drawn (read_markup.DrawnRead), the others Plotly figures."""
    rows = memory_rows.describe_steps(steps[: t + 1], episode.labels)
    logits = surgery.logits_of(model, steps[t].state)[0]
    names = [episode.label_text(c) for c in range(episode.classes)]
    figures = {"read": read_markup.parse(read_view.step_html(steps[t], rows, episode.images[: t + 1], names))}
    return figures | step_figures.memory_view(steps[t], rows, logits, names, parts), rows


def tiny_view(variant, steps=7, t=None):
    """A tiny model of a variant on a random episode, its memory view at step t (default: the last)."""
    kind, config = VARIANTS[variant]
    torch.manual_seed(0)
    model = build_model(kind, **TINY, **config).eval()
    generator = torch.Generator().manual_seed(2)
    episode, run = taught(model, torch.rand(steps, 20, 20, generator=generator),
                          torch.randint(0, 3, (steps,), generator=generator), 3)
    t = steps - 1 if t is None else t
    figures, rows = view_of(model, episode, run, t)
    return model, run[t], figures, rows


def outlined_rows(fig, colour):
    return sorted(int(round(s.y0 + 0.5)) for s in fig.layout.shapes if s.line.color == colour)


def line(fig, name):
    """The addressing figure's line of that name: its heatmap trace."""
    names = list(fig.layout.yaxis.ticktext)
    return next(trace for trace in fig.data if list(trace.y) == [names.index(name)])


def test_flmn_memories_show_the_true_values_on_fixed_scales():
    step, trace = stepped_trace("flmn")
    figs = step_figures.trace_figures(*step, batch_index=1)
    assert set(figs) == {"addressing", "feature_memory", "label_memory"}
    N = 6  # FLMN splits the 12 rows into 6 feature and 6 label rows
    for key, write in (("feature_memory", "feature_write_weights"), ("label_memory", "label_write_weights")):
        fig = figs[key]
        assert [t.type for t in fig.data] == ["heatmap"] * 3
        memory, read, written = fig.data
        np.testing.assert_allclose(memory.z, trace[key][1].numpy())
        assert (memory.zmin, memory.zmax) == (-1, 1) and list(memory.colorbar.tickvals) == [-1, 0, 1]
        assert np.shape(read.z) == (N, 1) and np.shape(written.z) == (N, 1)
        np.testing.assert_allclose(np.ravel(read.z), trace["read_weights"][1].numpy())  # not scaled to the max
        np.testing.assert_allclose(np.ravel(written.z), trace[write][1].numpy())
        assert (read.zmin, read.zmax) == (0, 1) and (written.zmin, written.zmax) == (0, 1)
        for weights, colour in ((trace["read_weights"][1], step_figures.READ_COLOUR), (trace[write][1], step_figures.WRITE_COLOUR)):
            assert outlined_rows(fig, colour) == np.flatnonzero(weights.numpy() >= step_figures.OUTLINE_WEIGHT).tolist()
    addressing = figs["addressing"]
    assert list(addressing.layout.yaxis.ticktext) == ["read", "feature write", "label write", "least used",
                                                      "similarity", "usage"]
    for name, values in (("read", trace["read_weights"][1]), ("usage", trace["usage"][1]),
                         ("similarity", trace["similarity"][1]), ("label write", trace["label_write_weights"][1])):
        np.testing.assert_allclose(line(addressing, name).z[0], values.numpy(), err_msg=name)
    assert (line(addressing, "read").zmin, line(addressing, "read").zmax) == (0, 1)
    assert (line(addressing, "usage").zmax, line(addressing, "similarity").zmin) == (step_figures.USAGE_RANGE, -1)


def test_mann_figures_draw_one_line_per_head():
    R, N, W = 2, 12, 4
    step, trace = stepped_trace("mann", read_heads=R)
    figs = step_figures.trace_figures(*step)
    assert set(figs) == {"addressing", "memory"}
    memory = figs["memory"]
    assert np.shape(memory.data[0].z) == (N, W)
    assert np.shape(memory.data[1].z) == (N, R) and list(memory.data[1].x) == ["read 1", "read 2"]
    np.testing.assert_allclose(memory.data[2].z, trace["write_weights"][0].numpy().T)
    addressing = figs["addressing"]
    assert list(addressing.layout.yaxis.ticktext) == ["read 1", "read 2", "write 1", "write 2", "least used 1",
                                                      "least used 2", "similarity 1", "similarity 2", "usage"]
    np.testing.assert_allclose(line(addressing, "similarity 2").z[0], trace["similarity"][0, 1].numpy())
    np.testing.assert_allclose(line(addressing, "least used 2").z[0], trace["least_used"][0, 1].numpy())


def test_a_near_uniform_read_looks_pale_and_a_focused_one_is_outlined():
    N = 64
    uniform, focused = torch.full((N,), 1 / N), torch.nn.functional.one_hot(torch.tensor(5), N).float()
    for read, outlined in ((uniform, []), (focused, [5])):
        fig = step_figures.memory_heatmap(torch.zeros(N, 8), "m", read_weights=read)
        np.testing.assert_allclose(np.ravel(fig.data[1].z), read.numpy())
        assert fig.data[1].zmax == 1 and outlined_rows(fig, step_figures.READ_COLOUR) == outlined
        addressing = step_figures.addressing_figure({"read": (read, step_figures.READ_COLOUR)}, "a")
        np.testing.assert_allclose(addressing.data[0].z[0], read.numpy())
        assert addressing.data[0].zmax == 1


def test_an_empty_memory_gets_a_plain_colour_bar():
    fig = step_figures.memory_heatmap(torch.zeros(64, 40), "empty")
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1, 1) and list(fig.data[0].colorbar.tickvals) == [-1, 0, 1]


@pytest.fixture(scope="module")
def retrieving():
    """The hand-made retrieving FLMN taught characters 0, 1, 2 (labels 1, 2, 3), then shown 0 again."""
    model = retrieving_flmn()
    images = distinct_drawings(3)[[0, 1, 2, 0]]
    episode, run = taught(model, images, [0, 1, 2, 0], 3)
    return model, episode, run


def test_rows_are_named_by_the_drawing_they_hold_and_the_rows_of_the_label_marked(retrieving):
    model, episode, run = retrieving
    figures, rows = view_of(model, episode, run, 3)
    assert rows.writer.tolist()[:4] == [0, 1, 2, 3] and (rows.writer[4:] == memory_rows.NO_ROW).all()
    memory = figures["feature_memory"]
    codes, marks = memory.data[3], memory.data[4]
    assert list(codes.x) == ["label"]
    np.testing.assert_array_equal(np.ravel(codes.z), [2, 3, 4, 2, 0, 0, 0, 0])  # labels 1, 2, 3, 1, then empty
    assert np.ravel(codes.text)[1] == "x2, label 2" and np.ravel(codes.text)[5] == "no drawing"
    assert list(marks.y) == [0]  # row 0 holds x1, an earlier drawing of label 1, the label of step 4
    assert list(memory.layout.yaxis.ticktext) == ["0 · x1", "1 · x2", "2 · x3", "3 · x4"]
    addressing = figures["addressing"]
    np.testing.assert_array_equal(line(addressing, "◆ same label").z[0], [1, 0, 0, 0, 0, 0, 0, 0])


def test_the_read_view_shows_where_the_read_went_with_the_drawings(retrieving):
    model, episode, run = retrieving
    figures, rows = view_of(model, episode, run, 3)
    read = figures["read"]
    by_row, by_label = read.bars["row"], read.bars["label"]
    weights = run[3].state.read_weights[0, 0].numpy()
    top = np.argsort(-weights, kind="stable")[: read_view.TOP_ROWS]
    np.testing.assert_allclose([bar.weight for bar in by_row[: read_view.TOP_ROWS]], weights[top], rtol=1e-6)
    assert top[0] == 0 and by_row[0].weight > 0.99 and math.isclose(sum(b.weight for b in by_row), 1.0, rel_tol=1e-5)
    assert by_row[0].name == "◆ x1 / label 1" and by_row[0].same_label and not by_row[1].same_label
    assert by_row[0].thumbnail == step_figures.image_uri(episode.images[0])  # the drawing row 0 holds
    assert sum(bar.thumbnail is not None for bar in by_row) == int((rows.writer[top] >= 0).sum())
    assert [bar.name for bar in by_row[-2:]] == ["other / rows", "no / drawing"]
    np.testing.assert_allclose([bar.weight for bar in by_label], memory_rows.weight_by_label(weights, rows, 3).numpy(),
                               rtol=1e-5)
    assert read.title == "FLMN read" and "top weight 1.00" in read.caption and "entropy 0.00 of max" in read.caption
    assert "row 0: x1, label 1 ◆" in by_row[0].hover


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_read_is_drawn_on_its_true_scale(variant):
    """Every bar is its weight times the pixels of 1 high, never stretched to the largest weight."""
    read = tiny_view(variant)[2]["read"]
    for panel, bars in read.bars.items():
        assert read.unit_px[panel] == read_view.PANEL_PX[panel]
        for bar in bars:
            assert bar.height_px == pytest.approx(bar.weight * read.unit_px[panel], abs=0.06), (panel, bar)
        assert sum(bar.weight for bar in bars) == pytest.approx(1.0, abs=1e-5)


def test_label_names_are_shown_as_text_and_cut_under_the_bars():
    model, step, _, rows = tiny_view("flmn")
    names = ["<img src=x onerror=alert(1)>", "a very long name indeed", "c&d"]
    read = read_markup.parse(read_view.step_html(step, rows, [torch.zeros(20, 20)] * 7, names))
    assert [bar.name for bar in read.bars["label"][:3]] == [names[0][:8] + "…", "a very l…", "c&d"]
    assert read.bars["label"][1].hover.startswith("the rows holding drawings of label a very long name indeed")


def test_a_null_row_read_shows_what_it_took_from_nothing():
    model, step, figures, rows = tiny_view("flmn-null-row")
    weights = step.state.read_weights[0, 0]
    read = figures["read"]
    assert read.bars["row"][-1].name == "nothing" and read.bars["label"][-1].name == "nothing"
    assert read.bars["row"][-1].weight == pytest.approx(1 - float(weights.sum()), abs=1e-6)
    assert f"nothing {1 - float(weights.sum()):.2f}" in read.caption


def test_a_masked_read_of_an_empty_memory_reads_nothing():
    _, step, figures, _ = tiny_view("flmn-masked", t=0)
    assert step.state.read_weights.sum() == 0
    assert "entropy – of max" in figures["read"].caption and "nothing 1.00" in figures["read"].caption


def test_mann_rows_with_no_drawing_are_drawn_empty_and_their_read_weight_counted():
    """mann-exp1 writes one least-used row per step: at step 10 rows 11.. hold no drawing, only the thin
    film of Eq. (6), yet its softmax still gives them read weight, which the read view must count."""
    model = load_model(zoo.weights_path("mann-exp1"))
    episode = episode_from_pool(sample_glyph_pool(10, 4, seed=0), 5, 4, seed=0)
    episode.sync({"model": model})
    figures, rows = view_of(model, episode, episode.runs["model"], 10)
    assert (rows.writer[:11] >= 0).all() and (rows.writer[11:] == memory_rows.NO_ROW).all()
    assert (np.ravel(figures["memory"].data[3].z)[11:] == 0).all()  # the label strip's "no drawing"
    weights = episode.runs["model"][10].state.read_weights[0, 0].numpy()
    no_drawing = {bar.name: bar.weight for bar in figures["read"].bars["row"]}["no / drawing"]
    top = np.argsort(-weights, kind="stable")[: read_view.TOP_ROWS]
    assert no_drawing == pytest.approx(weights[11:].sum() - weights[top[top >= 11]].sum(), rel=1e-5)
    assert figures["read"].title == "MANN read"


def test_the_controller_figure_shows_the_steps_vectors_and_logits():
    model, step, figures, _ = tiny_view("flmn-key-strength")
    controller = figures["controller"]
    vectors, logits = controller.data
    assert list(vectors.y) == ["key k", "feature add a^f", "label add a^l", "read r (label memory)"]
    for row, values in enumerate((step.trace.key[0], step.trace.feature_add[0], step.trace.label_add[0],
                                  step.state.read[0])):
        np.testing.assert_allclose(vectors.z[row][: len(values)], values.numpy(), rtol=1e-6)
    torch.testing.assert_close(torch.softmax(torch.as_tensor(logits.y), 0), step.probabilities)
    assert f"key strength β {float(step.trace.strength[0]):.1f}" in controller.layout.title.text
    _, mann_step, mann_figures, _ = tiny_view("mann-4-heads-add")
    names = list(mann_figures["controller"].data[0].y)
    assert names == [f"{kind} {h}" for kind in ("key k", "add a", "read r") for h in range(1, 5)]
    np.testing.assert_allclose(mann_figures["controller"].data[0].z[5], mann_step.trace.written[0, 1].numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_memory_view_is_valid_and_light_for_every_variant(variant):
    _, _, figures, _ = tiny_view(variant)
    assert list(figures)[1] == "addressing" and list(figures)[-1] == "controller"
    for name, figure in list(figures.items())[1:]:  # the read is HTML (test_the_read_is_drawn_on_its_true_scale)
        go.Figure(figure.to_dict())  # Plotly's validation, which the app skips for speed, finds nothing wrong
        for trace in figure.data:
            for values in (getattr(trace, "z", None), trace.y):
                if isinstance(values, np.ndarray) and values.dtype.kind == "f":
                    assert values.dtype == np.float32, (name, trace.type)
            if trace.type == "heatmap" and getattr(trace, "text", None) is not None:
                assert min(np.shape(trace.z)) == 1, f"{name}: per-cell text on a large heatmap"


def test_bad_inputs_get_clear_messages():
    with pytest.raises(ValueError, match="memory has 5"):
        step_figures.memory_heatmap(torch.zeros(5, 3), "m", read_weights=torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[N, W\]"):
        step_figures.memory_heatmap(torch.zeros(5), "m")
    with pytest.raises(ValueError, match="different numbers of rows"):
        step_figures.addressing_figure({"a": (torch.zeros(3), "red"), "b": (torch.zeros(4), "red")}, "t")
    with pytest.raises(TypeError, match="FLMN or MANN step, not dict"):
        step_figures.trace_figures(stepped_trace("flmn")[0][0], {})
    with pytest.raises(ValueError, match="3 classes"):
        step_figures.probabilities_figure({"FLMN": torch.ones(2) / 2}, ["a", "b", "c"])


def test_a_model_with_more_labels_than_the_episode_uses_gets_a_bar_for_the_rest():
    """A model of L = 5 labels on an episode of 3: its three labels' bars, then "not in use" for the two others;
    a model of 3 labels beside it has nothing there."""
    fig = step_figures.probabilities_figure({"FLMN": torch.tensor([0.5, 0.2, 0.1, 0.15, 0.05]),
                                             "MANN": torch.tensor([0.2, 0.3, 0.5])}, ["1", "2", "3"])
    wide, narrow = fig.data
    assert list(wide.x) == ["1", "2", "3", step_figures.NOT_IN_USE] and list(narrow.x) == ["1", "2", "3", "not in use"]
    np.testing.assert_allclose(wide.y, [0.5, 0.2, 0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose(narrow.y, [0.2, 0.3, 0.5, 0.0], atol=1e-7)


def test_probabilities_figure_groups_bars_per_model():
    probabilities = {"FLMN": torch.tensor([0.7, 0.2, 0.1]), "MANN": torch.tensor([0.3, 0.3, 0.4])}
    fig = step_figures.probabilities_figure(probabilities, ["1", "2", "3"])
    assert [type(t) for t in fig.data] == [go.Bar, go.Bar] and fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["FLMN", "MANN"]
    np.testing.assert_allclose(fig.data[1].y, [0.3, 0.3, 0.4])
    assert list(fig.data[0].x) == ["1", "2", "3"]


def test_instance_accuracy_figure_in_percent_with_error_bars():
    ours = {"accuracy": [0.3, 0.8, 0.9], "ci95": [0.01, 0.02, 0.03]}
    fig = result_figures.instance_accuracy_figure({"ours": ours, "FLMN paper": paper.TABLE1[0].series()})
    np.testing.assert_allclose(fig.data[0].y, [30, 80, 90], rtol=1e-6)
    np.testing.assert_allclose(fig.data[0].error_y.array, [1, 2, 3], rtol=1e-6)
    assert list(fig.data[1].x) == [1, 2, 3, 4, 5, 10]
    np.testing.assert_allclose(fig.data[1].y, [31.1, 85.6, 88.7, 89.5, 91.0, 94.1], rtol=1e-6)
    assert fig.data[1].error_y.array is None
    assert fig.data[0].mode == "lines+markers" and fig.data[1].mode == "markers"  # no line between published cells


def fake_log(scale):
    """Training records at 100 and 200 episodes and one validation record."""
    records = [{"kind": "train", "episode": e, "loss": 1.0 / e, "accuracy": [scale * k / 10 for k in range(1, 11)]}
               for e in (200, 100)]
    records.append({"kind": "validation", "episode": 200, "loss": 0.5, "accuracy": [0.0] * 10})
    return records


def test_training_curves_one_panel_per_instance():
    fig = result_figures.training_curves_figure({"flmn": fake_log(1.0), "mann": fake_log(0.5)}, instances=(1, 10))
    assert len(fig.data) == 4 and all(isinstance(t, go.Scatter) for t in fig.data)
    flmn_first, flmn_tenth = fig.data[0], fig.data[1]
    assert list(flmn_first.x) == [100, 200]  # sorted by episode, validation records left out
    np.testing.assert_allclose(flmn_first.y, [10, 10])
    np.testing.assert_allclose(flmn_tenth.y, [100, 100])
    np.testing.assert_allclose(fig.data[3].y, [50, 50])
    assert [t.showlegend for t in fig.data] == [True, False, True, False]
    validation = result_figures.training_curves_figure({"flmn": fake_log(1.0)}, instances=(2,), kind="validation")
    assert list(validation.data[0].y) == [0.0]


def test_loss_curves_train_and_validation():
    fig = result_figures.loss_curves_figure({"flmn": fake_log(1.0)})
    assert [t.name for t in fig.data] == ["flmn (train)", "flmn (validation)"]
    np.testing.assert_allclose(fig.data[0].y, [0.01, 0.005])


def test_empty_logs_say_so():
    fig = result_figures.training_curves_figure({})
    assert any("no training logs" in a.text for a in fig.layout.annotations)


def test_protocol_figure_shows_the_offset_task():
    classes, steps = 3, 6
    fig = protocol.protocol_figure(classes, steps)
    assert len(fig.layout.images) == steps
    texts = [a.text for a in fig.layout.annotations]
    assert texts.count("?") == classes  # each class's first showing can only be guessed
    assert texts.count("–") == 1  # no label is fed at the first step
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == 2 * steps + 2 * (steps - 1)
    assert math.isclose(fig.layout.xaxis.range[1], steps + 0.6)


@pytest.mark.parametrize("kind", ["flmn", "mann"])
def test_the_memory_view_builds_only_the_parts_asked_for_and_the_same_figures(kind):
    torch.manual_seed(0)
    model = build_model(kind, **TINY).eval()
    generator = torch.Generator().manual_seed(2)
    episode, run = taught(model, torch.rand(5, 20, 20, generator=generator),
                          torch.randint(0, 3, (5,), generator=generator), 3)
    every, _ = view_of(model, episode, run, 4)
    every.pop("read")
    for parts in (("feature_memory", "label_memory", "memory"), ("addressing", "controller"), ()):
        some, _ = view_of(model, episode, run, 4, parts)
        some.pop("read")
        assert list(some) == [name for name in every if name in parts]
        assert all(some[name].to_json() == every[name].to_json() for name in some)


def test_before_its_label_a_read_claims_nothing_about_its_class_and_names_what_it_overwrote():
    """The read view of a step whose label is not given: no ◆ weight (it would read 0.00 while the read may
    sit on an earlier drawing of the class), a line saying when it is known; and a row this step
    overwrote, named with the drawing it held and whether its label has any row left."""
    weights = torch.tensor([[0.7, 0.2, 0.1]])
    write = torch.tensor([[1.0, 0.0, 0.05], [0.0, 0.9, 0.05], [0.8, 0.0, 0.05]])
    cleared = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]])
    images = [torch.zeros(20, 20)] * 3
    pending = memory_rows.describe_rows(write, cleared, labels=[0, 1])
    read = read_markup.parse(read_view.read_html(weights, pending, images, "FLMN read", ["a", "b"]))
    assert "on ◆ rows: known once the label is given" in read.caption and "on ◆ rows 0" not in read.caption
    assert read.notes == ["Overwritten now: row 0, which held x1, label a; no row holds label a any more"]
    labelled = memory_rows.describe_rows(write, cleared, labels=[0, 1, 1])
    read = read_markup.parse(read_view.read_html(weights, labelled, images, "FLMN read", ["a", "b"]))
    assert "on ◆ rows 0.20" in read.caption and "known once" not in read.caption  # row 1 holds x2 of label b


def test_a_read_mostly_on_empty_rows_says_why_it_can_still_be_right():
    empty = memory_rows.NO_ROW
    rows = memory_rows.RowView(writer=torch.tensor([0, empty, empty, empty]), kept=torch.ones(4),
                               label=torch.tensor([0, empty, empty, empty]), same_label=torch.tensor([True, False, False, False]))
    mostly_empty = read_markup.parse(read_view.read_html(torch.tensor([0.1, 0.3, 0.3, 0.3]), rows, [torch.zeros(20, 20)],
                                                         "MANN read", ["a"]))
    assert any("Most of this read lands on rows holding no drawing" in note for note in mostly_empty.notes)
    focused = read_markup.parse(read_view.read_html(torch.tensor([0.9, 0.0, 0.1, 0.0]), rows, [torch.zeros(20, 20)],
                                                    "MANN read", ["a"]))
    assert focused.notes == []


def test_fifteen_labels_get_fifteen_colours_and_numbered_bars():
    assert len(set(step_figures.code_colours(15)[2:])) == 15
    rows = memory_rows.RowView(writer=torch.tensor([0, 1]), kept=torch.ones(2), label=torch.tensor([0, 14]),
                               same_label=torch.tensor([False, False]))
    names = [f"{c + 1} (name {c + 1})" for c in range(15)]
    read = read_markup.parse(read_view.read_html(torch.tensor([0.5, 0.5]), rows, [torch.zeros(20, 20)] * 2, "FLMN read",
                                                 names))
    assert [bar.name for bar in read.bars["label"][:15]] == [str(c + 1) for c in range(15)]
    assert read.bars["label"][14].hover.startswith("the rows holding drawings of label 15 (name 15)")


def test_each_model_has_one_colour_on_every_figure():
    """The Teach and explorer bars, and figures built with colours in series order (the results' curves,
    the Play page's scores) once coloured by model: flmn-conv and mann-exp1 alike everywhere."""
    from flmn_core.plotting import colour_by_model, model_colour
    from flmn_core.results import figures as result_figures

    bars = step_figures.probabilities_figure({"mann-exp1": torch.ones(2) / 2, "flmn-conv": torch.ones(2) / 2}, ["1", "2"])
    assert [bar.marker.color for bar in bars.data] == [model_colour("mann-exp1"), model_colour("flmn-conv")]
    series = {"You": {"accuracy": [0.5]}, "Human players (Santoro et al. 2016, Table 1)": {"accuracy": [0.3]},
              "flmn-conv": {"accuracy": [0.4]}, "mann-exp1": {"accuracy": [0.2]}}
    scores = colour_by_model(result_figures.instance_accuracy_figure(series))
    colours = {trace.name: trace.line.color for trace in scores.data}
    assert colours["flmn-conv"] == model_colour("flmn-conv") != colours["mann-exp1"] == model_colour("mann-exp1")
    assert len(set(colours.values())) == 4
    assert model_colour("flmn-15").startswith("#") and model_colour("FLMN") != model_colour("MANN")


def test_the_controller_keeps_its_colour_bar_off_the_logits_and_its_notes_on_short_lines():
    model = build_model("flmn", classes=5, controller_size=10, memory_rows=8, word_size=5, key_strength=True)
    _, state, trace = model.step(torch.rand(1, 20, 20), torch.zeros(1, 5), None)
    figure = step_figures.controller_figure(state, trace, torch.zeros(5), "FLMN controller")
    colorbar = figure.data[0]["colorbar"]
    assert colorbar["orientation"] == "h" and colorbar["y"] < 0  # under the vectors, not between them and the logits
    assert figure.layout.title.text.count("<br>") == 2  # the write gate and the key strength, a line each
