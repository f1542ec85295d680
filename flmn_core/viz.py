"""Tensors -> Plotly figures: memories, addressing weights, predictions, accuracy curves, the task.

Plain functions, no Streamlit: the app, the report command and notebooks call them alike. The app
redraws after every drawing within 300 ms, so figures stay light: float32 arrays (Plotly sends them as
binary), short hover templates, no per-cell text on large heatmaps.

Shapes: N memory rows, W word size, R read heads, C classes.
"""

import html
import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .glyphs import make_alphabet, render
from .models import FLMNTrace, MANNTrace

READ_COLOUR = "#1b9e3e"  # rows just read: green outlines and strip
WRITE_COLOUR = "#e6740b"  # rows just written: orange
MEMORY_COLOURS = "RdBu"  # memory values are signed sums of tanh vectors: a diverging scale around 0
SERIES_COLOURS = qualitative.Plotly  # one colour per model or checkpoint, in dict order
INK_COLOURS = [[0.0, "white"], [1.0, "black"]]  # images: ink 1 drawn black on white
MARGIN = dict(l=50, r=20, t=40, b=40)


def _array(values):
    """A tensor, array or list -> float32 numpy array (detached, on the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def _weight_rows(weights, name):
    """Weights [N] or [R, N] -> ([K, N] array, K row labels): one row per head."""
    weights = _array(weights)
    if weights.ndim == 1:
        return weights[None], [name]
    if weights.ndim == 2:
        if weights.shape[0] == 1:
            return weights, [name]
        return weights, [f"{name} {h + 1}" for h in range(weights.shape[0])]
    raise ValueError(f"{name}: expected weights of shape [N] or [R, N], got {list(weights.shape)}")


def memory_heatmap(memory, title, read_weights=None, write_weights=None):
    """A memory as a heatmap, one line per memory row, with the rows just read and written marked.

    memory: [N, W]; read_weights, write_weights: optional [N] or [R, N] (one per head). Each given set of
    weights is drawn as a strip beside the memory (one column per head), and the row each head weights
    most is outlined on the memory (read green, written orange).
    """
    memory = _array(memory)
    if memory.ndim != 2:
        raise ValueError(f"memory: expected shape [N, W], got {list(memory.shape)}")
    N, W = memory.shape
    limit = max(float(np.abs(memory).max()), 1e-6)
    traces = [go.Heatmap(z=memory, colorscale=MEMORY_COLOURS, zmid=0, zmin=-limit, zmax=limit,
                         colorbar=dict(thickness=10, len=0.8),
                         hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>")]
    outlines = []
    for weights, name, colour in ((read_weights, "read", READ_COLOUR), (write_weights, "write", WRITE_COLOUR)):
        if weights is None:
            continue
        rows, labels = _weight_rows(weights, name)
        if rows.shape[1] != N:
            raise ValueError(f"{name} weights cover {rows.shape[1]} rows but the memory has {N}")
        traces.append(go.Heatmap(z=rows.T, x=labels, xaxis=f"x{len(traces) + 1}",
                                 colorscale=[[0, "white"], [1, colour]], zmin=0, zmax=max(float(rows.max()), 1e-6), showscale=False,
                                 hovertemplate="%{x}, row %{y}: %{z:.3f}<extra></extra>"))
        outlines += [dict(type="rect", x0=-0.5, x1=W - 0.5, y0=int(r) - 0.5, y1=int(r) + 0.5, xref="x", yref="y",
                          line=dict(color=colour, width=2)) for r in rows.argmax(axis=1)]
    # One y axis for all; the x axes side by side, the strips narrow. Built in one go: make_subplots and
    # add_shape revalidate the figure at each call, several times slower than this.
    widths = np.array([W] + [max(2.0, 0.12 * W)] * (len(traces) - 1))
    gap = 0.015
    edges = np.concatenate([[0], np.cumsum(widths / widths.sum() * (1 - gap * (len(widths) - 1)))])
    axes = {f"xaxis{i + 1 if i else ''}": dict(domain=[edges[i] + gap * i, edges[i + 1] + gap * i], anchor="y")
            for i in range(len(widths))}
    axes["xaxis"]["title"] = dict(text="word")
    layout = dict(title=dict(text=title, font=dict(size=14)), height=140 + 3 * N, margin=MARGIN, shapes=outlines,
                  yaxis=dict(autorange="reversed", title=dict(text="memory row")), **axes)
    return go.Figure(data=traces, layout=layout)


def addressing_figure(weights, title):
    """Several weightings over the memory rows as one compact heatmap, a line per weighting.

    weights: {name: [N] or [R, N]} in display order (e.g. read, usage, least used, write). Each line is
    scaled to its own maximum so that usage (up to 1 / (1 - gamma)) and weights (up to 1) both show;
    the hover gives the true value.
    """
    rows, labels = [], []
    for name, values in weights.items():
        block, names = _weight_rows(values, name)
        rows.append(block)
        labels += names
    if not rows:
        raise ValueError("addressing_figure needs at least one weighting")
    if len({r.shape[1] for r in rows}) > 1:
        raise ValueError(f"the weightings cover different numbers of rows: {[r.shape[1] for r in rows]}")
    values = np.concatenate(rows)
    scaled = values / np.maximum(values.max(axis=1, keepdims=True), 1e-6)
    heatmap = go.Heatmap(z=scaled, y=labels, customdata=values, colorscale="Blues", zmin=0, zmax=1,
                         colorbar=dict(thickness=10, title=dict(text="of max", side="right")),
                         hovertemplate="%{y}, row %{x}: %{customdata:.3f}<extra></extra>")
    return go.Figure(heatmap, layout=dict(
        title=dict(text=title, font=dict(size=14)), height=110 + 24 * len(labels), margin=MARGIN,
        yaxis=dict(autorange="reversed"), xaxis=dict(title=dict(text="memory row"))))


def probabilities_figure(probabilities, class_names, height=300):
    """Each model's predicted probabilities as grouped bars, each labelled with its percentage.

    probabilities: {model: [C]}, class_names: C names (shown as plain text: Plotly would otherwise render
    HTML in them, a link included). The labels may rise above the plot (cliponaxis off) so that one at 100%
    is never cut, and are short and small so that two bars' labels do not run into each other on a phone.
    """
    names = [html.escape(str(n)) for n in class_names]
    bars = []
    for colour, (name, values) in zip(_colours(), probabilities.items()):
        values = _array(values)
        if values.shape != (len(class_names),):
            raise ValueError(f"{name}: {list(values.shape)} probabilities for {len(class_names)} classes")
        bars.append(go.Bar(x=names, y=values, name=html.escape(str(name)), marker_color=colour,
                           text=[f"{100 * p:.0f}%" for p in values], textposition="outside", cliponaxis=False,
                           textfont=dict(size=10), hovertemplate="%{fullData.name}, %{x}: %{y:.3f}<extra></extra>"))
    return go.Figure(bars, layout=dict(
        barmode="group", bargap=0.25, bargroupgap=0.05, height=height, margin=dict(l=44, r=8, t=40, b=30),
        yaxis=dict(range=[0, 1], tickformat=".0%", nticks=3, title=None, fixedrange=True),
        xaxis=dict(type="category", title=None, tickfont=dict(size=11), fixedrange=True),
        legend=dict(orientation="h", x=0, y=1, yanchor="top", yref="container"),
        font=dict(size=11)))


def image_figure(image, title=None):
    """What the model sees: image [20, 20] (ink 1) drawn black on white, square, without axes."""
    image = _array(image)
    if image.ndim != 2:
        raise ValueError(f"image: expected shape [H, W], got {list(image.shape)}")
    heatmap = go.Heatmap(z=image, colorscale=INK_COLOURS, zmin=0, zmax=1, showscale=False,
                         hovertemplate="(%{x}, %{y}): %{z:.2f}<extra></extra>")
    return go.Figure(heatmap, layout=dict(
        width=200, height=200 + (20 if title else 0), margin=dict(l=5, r=5, t=30 if title else 5, b=5),
        title=dict(text=title or "", font=dict(size=13)), plot_bgcolor="white",
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(autorange="reversed", scaleanchor="x", visible=False)))


def instance_accuracy_figure(series, title="Accuracy by instance"):
    """Per-instance accuracy, one line per model, with 95% error bars where given.

    series: {name: {"accuracy": [I] fractions, optional "ci95": [I] half-widths (fractions), optional
    "instances": [I] instance numbers (default 1..I)}}; e.g. evaluate's result JSON or
    paper.Published.series(). Drawn in percent.
    """
    fig = go.Figure()
    for colour, (name, spec) in zip(_colours(), series.items()):
        accuracy = _array(spec["accuracy"])
        instances = list(spec.get("instances") or range(1, len(accuracy) + 1))
        if len(instances) != len(accuracy):
            raise ValueError(f"{name}: {len(accuracy)} accuracies for {len(instances)} instances")
        error = None
        if spec.get("ci95") is not None:
            error = dict(type="data", array=100 * _array(spec["ci95"]), visible=True, thickness=1.2)
        fig.add_trace(go.Scatter(x=instances, y=100 * accuracy, error_y=error, mode="lines+markers", name=name,
                                 line=dict(color=colour),
                                 hovertemplate=f"{name}, instance %{{x}}: %{{y:.1f}}%<extra></extra>"))
    fig.update_layout(title=dict(text=title, font_size=14), xaxis=dict(title_text="instance", dtick=1),
                      yaxis=dict(title_text="accuracy (%)", range=[0, 100]), height=380, margin=MARGIN)
    return fig


def _records(log, kind):
    """The records of one kind ("train" or "validation") of a training log, in episode order."""
    return sorted((r for r in log if r.get("kind") == kind), key=lambda r: r["episode"])


def training_curves_figure(logs, instances=(1, 2, 10), kind="train", title=None):
    """Per-instance accuracy against training episodes, one panel per instance, one line per run.

    logs: {name: records of flmn_core.train's log.jsonl}; kind: "train" (running accuracy of the
    training batches) or "validation".
    """
    if not instances or min(instances) < 1:
        raise ValueError(f"instances must be numbers from 1, got {instances!r}")
    fig = make_subplots(rows=1, cols=len(instances), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[f"instance {k}" for k in instances])
    for colour, (name, log) in zip(_colours(), logs.items()):
        records = _records(log, kind)
        episodes = [r["episode"] for r in records]
        for column, k in enumerate(instances, start=1):
            accuracy = [100 * r["accuracy"][k - 1] if len(r["accuracy"]) >= k else math.nan for r in records]
            fig.add_trace(go.Scatter(x=episodes, y=accuracy, mode="lines", name=name, legendgroup=name,
                                     showlegend=column == 1, line=dict(color=colour),
                                     hovertemplate=f"{name}, episode %{{x}}: %{{y:.1f}}%<extra></extra>"),
                          row=1, col=column)
    _note_if_empty(fig, logs)
    fig.update_yaxes(range=[0, 100], row=1, col=1, title_text=f"{kind} accuracy (%)")
    fig.update_xaxes(title_text="episodes", matches="x")
    fig.update_layout(title=dict(text=title or f"Per-instance {kind} accuracy", font_size=14), height=380,
                      margin=MARGIN)
    return fig


def loss_curves_figure(logs, title="Loss"):
    """Cross-entropy against training episodes: training (solid) and validation (dotted) for each run.
    logs: {name: records of flmn_core.train's log.jsonl}."""
    fig = go.Figure()
    for colour, (name, log) in zip(_colours(), logs.items()):
        for kind, dash in (("train", "solid"), ("validation", "dot")):
            records = _records(log, kind)
            if records:
                fig.add_trace(go.Scatter(x=[r["episode"] for r in records], y=[r["loss"] for r in records],
                                         mode="lines", name=f"{name} ({kind})", line=dict(color=colour, dash=dash),
                                         hovertemplate=f"{name}, episode %{{x}}: %{{y:.3f}}<extra></extra>"))
    _note_if_empty(fig, logs)
    fig.update_layout(title=dict(text=title, font_size=14), xaxis_title_text="episodes",
                      yaxis_title_text="cross-entropy per step", height=380, margin=MARGIN)
    return fig


def _note_if_empty(fig, logs):
    """Say so on the figure when there is no log to draw, rather than show empty axes."""
    if not any(logs.values()):
        fig.add_annotation(text="no training logs yet", xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False, font=dict(size=16, color="#888888"))


def _colours():
    """Series colours, cycling."""
    while True:
        yield from SERIES_COLOURS


def trace_figures(state, trace, batch_index=0):
    """The figures of one model at one step, from the (state, trace) that model.step returned.

    FLMN -> {"addressing", "feature_memory", "label_memory"}; MANN -> {"addressing", "memory"}.
    """
    b = batch_index
    if isinstance(trace, FLMNTrace):
        read, write = state.read_weights[b, 0], state.feature_write_weights[b, 0]
        return {
            "addressing": addressing_figure({
                "read": read, "usage": state.usage[b], "least used": state.least_used[b, 0],
                "feature write": write, "label write": trace.label_write_weights[b],
            }, "FLMN addressing"),
            "feature_memory": memory_heatmap(state.feature_memory[b], "FLMN feature memory", read, write),
            "label_memory": memory_heatmap(state.label_memory[b], "FLMN label memory", read,
                                           trace.label_write_weights[b]),
        }
    if isinstance(trace, MANNTrace):
        read, write = state.read_weights[b], trace.write_weights[b]
        return {
            "addressing": addressing_figure({"read": read, "usage": state.usage[b],
                                             "least used": state.least_used[b], "write": write}, "MANN addressing"),
            "memory": memory_heatmap(state.memory[b], "MANN memory", read, write),
        }
    raise TypeError(f"expected the trace of an FLMN or MANN step, not {type(trace).__name__}")


def protocol_figure(classes=3, steps=6, seed=0):
    """The task as a picture (after Santoro et al.'s Fig. 1): a time line of steps t, each with its
    input x_t (a character), the label of the previous step y_{t-1} fed beside it, the model carrying
    its state to the next step, and its prediction: a guess ("?") on a class's first showing, the right
    label once the class has been labelled. The arrow from x_t to the next step's label box is the offset.
    """
    if classes < 1 or steps < 2:
        raise ValueError(f"need classes >= 1 and steps >= 2, got {classes} and {steps}")
    labels = _protocol_labels(classes, steps, seed)
    alphabet = make_alphabet(classes, seed)
    colours = [c for _, c in zip(range(classes), _colours())]
    shapes, notes, images, seen = [], [], [], set()
    for t, label in enumerate(labels, start=1):
        glyph = Image.fromarray(render(alphabet[label], drawer_seed=seed * 1000 + t)).resize((48, 48), Image.LANCZOS)
        images.append(dict(source=glyph, x=t, y=3.05, xref="x", yref="y", sizex=0.6, sizey=0.6, xanchor="center",
                           yanchor="middle", sizing="contain", layer="above"))
        _frame(shapes, notes, t, 3.05, 0.68, 0.68, colours[label], f"x<sub>{t}</sub>")
        fed = "–" if t == 1 else str(labels[t - 2] + 1)
        _box(shapes, notes, t, 2.05, 0.5, "#bbbbbb" if t == 1 else colours[labels[t - 2]], fed)
        _box(shapes, notes, t, 1.1, 0.62, "#7f7f7f", "model")
        first = label not in seen
        seen.add(label)
        _box(shapes, notes, t, 0.15, 0.5, "#bbbbbb" if first else colours[label], "?" if first else str(label + 1))
        notes += [_arrow((t, 1.84), (t, 1.31)), _arrow((t, 0.89), (t, 0.36))]  # input -> model -> prediction
        if t < steps:
            notes.append(_arrow((t + 0.31, 1.1), (t + 0.69, 1.1)))  # the state goes on to the next step
            notes.append(_arrow((t + 0.3, 2.75), (t + 0.75, 2.27), colours[label]))  # y_t arrives at t + 1
    for y, text in ((3.05, "input x<sub>t</sub>"), (2.05, "label fed<br>y<sub>t-1</sub>"),
                    (1.1, "controller<br>+ memory"), (0.15, "prediction")):
        notes.append(dict(x=0.45, y=y, text=text, showarrow=False, xanchor="right", font=dict(size=12)))
    notes.append(dict(x=(steps + 1) / 2, y=-0.45, showarrow=False, font=dict(size=12),
                      text="? = a class shown for the first time: its label is not known yet, "
                           "so the model can only guess"))
    title = (f"The task: {classes} classes, labels shuffled in every episode; "
             "the label of x<sub>t</sub> is fed with x<sub>t+1</sub>")
    return go.Figure(layout=dict(
        title=dict(text=title, font=dict(size=14)), shapes=shapes, annotations=notes, images=images,
        xaxis=dict(range=[-0.6, steps + 0.6], visible=False), yaxis=dict(range=[-0.7, 3.6], visible=False),
        width=160 + 105 * steps, height=470, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
        showlegend=False))


def _protocol_labels(classes, steps, seed):
    """A label sequence for the picture: each class about equally often, in shuffled order, with no class
    twice in a row where that can be avoided (so that recall across other classes shows)."""
    rng = np.random.default_rng(seed)
    pool = np.repeat(np.arange(classes), math.ceil(steps / classes))
    for _ in range(100):
        labels = rng.permutation(pool)[:steps]
        if (labels[1:] != labels[:-1]).all():
            break
    return labels


def _box(shapes, notes, x, y, width, colour, text, height=0.42):
    """A filled label box centred at (x, y) with its text."""
    shapes.append(dict(type="rect", x0=x - width / 2, x1=x + width / 2, y0=y - height / 2, y1=y + height / 2,
                       line=dict(color=colour, width=2), fillcolor=colour, opacity=0.35, layer="below"))
    notes.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=13)))


def _frame(shapes, notes, x, y, width, height, colour, caption):
    """An open frame centred at (x, y) with a caption under it."""
    shapes.append(dict(type="rect", x0=x - width / 2, x1=x + width / 2, y0=y - height / 2, y1=y + height / 2,
                       line=dict(color=colour, width=2)))
    notes.append(dict(x=x, y=y - height / 2 - 0.12, text=caption, showarrow=False, font=dict(size=13)))


def _arrow(start, end, colour="#555555"):
    """An arrow annotation from start (x, y) to end (x, y) in data coordinates."""
    return dict(x=end[0], y=end[1], ax=start[0], ay=start[1], xref="x", yref="y", axref="x", ayref="y", text="",
                showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.5, arrowcolor=colour)
