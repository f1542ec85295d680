"""Figures from the real traces of both models: trace types, data shapes and the marked rows."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from flmn_core import build_model, paper, viz

TINY = dict(classes=3, controller_size=8, memory_rows=12, word_size=4)


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


def outlined_rows(fig, colour):
    return sorted(int(round(s.y0 + 0.5)) for s in fig.layout.shapes if s.line.color == colour)


def test_flmn_trace_figures():
    step, trace = stepped_trace("flmn")
    figs = viz.trace_figures(*step, batch_index=1)
    assert set(figs) == {"addressing", "feature_memory", "label_memory"}
    N, W = 6, 4  # FLMN splits the 12 rows into 6 feature and 6 label rows
    for key, write in (("feature_memory", "feature_write_weights"), ("label_memory", "label_write_weights")):
        fig = figs[key]
        assert [type(t) for t in fig.data] == [go.Heatmap] * 3
        np.testing.assert_allclose(fig.data[0].z, trace[key][1].numpy())
        assert np.shape(fig.data[1].z) == (N, 1) and np.shape(fig.data[2].z) == (N, 1)
        np.testing.assert_allclose(np.ravel(fig.data[1].z), trace["read_weights"][1].numpy())
        assert outlined_rows(fig, viz.READ_COLOUR) == [int(trace["read_weights"][1].argmax())]
        assert outlined_rows(fig, viz.WRITE_COLOUR) == [int(trace[write][1].argmax())]
    addressing = figs["addressing"].data[0]
    assert list(addressing.y) == ["read", "usage", "least used", "feature write", "label write"]
    assert np.shape(addressing.z) == (5, N)
    np.testing.assert_allclose(addressing.customdata[1], trace["usage"][1].numpy())


def test_mann_trace_figures_with_several_heads():
    R, N, W = 2, 12, 4
    step, trace = stepped_trace("mann", read_heads=R)
    figs = viz.trace_figures(*step)
    assert set(figs) == {"addressing", "memory"}
    memory = figs["memory"]
    assert np.shape(memory.data[0].z) == (N, W)
    assert np.shape(memory.data[1].z) == (N, R) and list(memory.data[1].x) == ["read 1", "read 2"]
    np.testing.assert_allclose(memory.data[2].z, trace["write_weights"][0].numpy().T)
    assert outlined_rows(memory, viz.READ_COLOUR) == sorted(trace["read_weights"][0].argmax(-1).tolist())
    assert outlined_rows(memory, viz.WRITE_COLOUR) == sorted(trace["write_weights"][0].argmax(-1).tolist())
    addressing = figs["addressing"].data[0]
    assert list(addressing.y) == ["read 1", "read 2", "usage", "least used 1", "least used 2", "write 1", "write 2"]
    assert np.shape(addressing.z) == (7, N)


def test_addressing_rows_are_scaled_to_their_maximum():
    usage = torch.tensor([0.0, 3.0, 6.0])
    fig = viz.addressing_figure({"usage": usage, "read": torch.tensor([0.2, 0.3, 0.5])}, "t")
    np.testing.assert_allclose(fig.data[0].z, [[0, 0.5, 1], [0.4, 0.6, 1]], rtol=1e-6)
    np.testing.assert_allclose(fig.data[0].customdata[0], usage.numpy())


def test_bad_inputs_get_clear_messages():
    with pytest.raises(ValueError, match="memory has 5"):
        viz.memory_heatmap(torch.zeros(5, 3), "m", read_weights=torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[N, W\]"):
        viz.memory_heatmap(torch.zeros(5), "m")
    with pytest.raises(ValueError, match="different numbers of rows"):
        viz.addressing_figure({"a": torch.zeros(3), "b": torch.zeros(4)}, "t")
    with pytest.raises(TypeError, match="FLMN or MANN step, not dict"):
        viz.trace_figures(stepped_trace("flmn")[0][0], {})
    with pytest.raises(ValueError, match="3 classes"):
        viz.probabilities_figure({"FLMN": torch.ones(4) / 4}, ["a", "b", "c"])


def test_probabilities_figure_groups_bars_per_model():
    probabilities = {"FLMN": torch.tensor([0.7, 0.2, 0.1]), "MANN": torch.tensor([0.3, 0.3, 0.4])}
    fig = viz.probabilities_figure(probabilities, ["1", "2", "3"])
    assert [type(t) for t in fig.data] == [go.Bar, go.Bar] and fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["FLMN", "MANN"]
    np.testing.assert_allclose(fig.data[1].y, [0.3, 0.3, 0.4])
    assert list(fig.data[0].x) == ["1", "2", "3"]


def test_image_figure_shows_the_image():
    image = torch.rand(20, 20)
    fig = viz.image_figure(image)
    assert isinstance(fig.data[0], go.Heatmap)
    np.testing.assert_allclose(fig.data[0].z, image.numpy())
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 at the top, as the image


def test_instance_accuracy_figure_in_percent_with_error_bars():
    ours = {"accuracy": [0.3, 0.8, 0.9], "ci95": [0.01, 0.02, 0.03]}
    fig = viz.instance_accuracy_figure({"ours": ours, "FLMN paper": paper.TABLE1[0].series()})
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
    fig = viz.training_curves_figure({"flmn": fake_log(1.0), "mann": fake_log(0.5)}, instances=(1, 10))
    assert len(fig.data) == 4 and all(isinstance(t, go.Scatter) for t in fig.data)
    flmn_first, flmn_tenth = fig.data[0], fig.data[1]
    assert list(flmn_first.x) == [100, 200]  # sorted by episode, validation records left out
    np.testing.assert_allclose(flmn_first.y, [10, 10])
    np.testing.assert_allclose(flmn_tenth.y, [100, 100])
    np.testing.assert_allclose(fig.data[3].y, [50, 50])
    assert [t.showlegend for t in fig.data] == [True, False, True, False]
    validation = viz.training_curves_figure({"flmn": fake_log(1.0)}, instances=(2,), kind="validation")
    assert list(validation.data[0].y) == [0.0]


def test_loss_curves_train_and_validation():
    fig = viz.loss_curves_figure({"flmn": fake_log(1.0)})
    assert [t.name for t in fig.data] == ["flmn (train)", "flmn (validation)"]
    np.testing.assert_allclose(fig.data[0].y, [0.01, 0.005])


def test_empty_logs_say_so():
    fig = viz.training_curves_figure({})
    assert any("no training logs" in a.text for a in fig.layout.annotations)


def test_protocol_figure_shows_the_offset_task():
    classes, steps = 3, 6
    fig = viz.protocol_figure(classes, steps)
    assert len(fig.layout.images) == steps
    texts = [a.text for a in fig.layout.annotations]
    assert texts.count("?") == classes  # each class's first showing can only be guessed
    assert texts.count("–") == 1  # no label is fed at the first step
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == 2 * steps + 2 * (steps - 1)
    assert math.isclose(fig.layout.xaxis.range[1], steps + 0.6)
