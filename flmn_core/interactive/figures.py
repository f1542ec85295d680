"""A step's tensors -> the app's Plotly figures: memories, addressing weights, the controller, predictions.

Plain functions, no Streamlit: the app and notebooks call them alike. The app
redraws after every drawing within 300 ms, so figures stay light: float32 arrays (Plotly sends them as
binary), short hover templates, no per-cell text on large heatmaps.

Shapes: N memory rows, W word size, R read heads, C classes.
"""

import base64
import html
import io
import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import get_colorscale, qualitative

from flmn_core.interactive import memory_rows
from flmn_core.model.networks import FLMNTrace, MANNTrace
from flmn_core.plotting import MARGIN, as_array, model_colour

READ_COLOUR = "#1b9e3e"  # rows just read: green outlines and strip
WRITE_COLOUR = "#e6740b"  # rows just written: orange
LEAST_USED_COLOUR = "#616161"  # the least-used rows of Eq. (5): grey
USAGE_COLOUR = "#3b6fb6"  # usage of Eq. (4): blue
# Memory values are signed sums of tanh vectors: a diverging scale around 0. Given as colours, not by name:
# the unvalidated figures (see _figure) would get Plotly.js's own "RdBu", grey in the middle.
MEMORY_COLOURS = get_colorscale("RdBu")
# One colour per label that a memory row holds: Set2's eight, then Dark2's eight for labels 9-16 (an episode
# uses at most 15 with the shipped checkpoints), so that no two labels of an episode share a colour.
LABEL_COLOURS = qualitative.Set2 + qualitative.Dark2
NO_DRAWING_COLOUR = "#ffffff"  # a row that holds no drawing is drawn empty
PENDING_COLOUR = "#9e9e9e"  # a row holding this step's drawing, whose label is not given yet
SAME_LABEL_COLOUR = "#111111"  # the mark (◆) of the rows holding earlier drawings of this step's label
# Fixed scales, so that a figure shows true values whatever the step: memories, keys, add and read vectors
# on tanh's -1..1 (larger sums are drawn at full colour), weights on 0..1, usage on 0..2 (a row read and
# written in full at one step); the hover gives the exact value.
VECTOR_RANGE = 1.0
USAGE_RANGE = 2.0
NOT_IN_USE = "not in use"  # the bar of a model's labels beyond the episode's (probabilities_figure)
OUTLINE_WEIGHT = 0.25  # rows read or written with at least this weight are outlined on the memory
MEMORY_PLOT_PX = 320  # plot height of a memory heatmap whatever N: 5 px a row for 64 rows, 2.5 for 128
ROW_LABEL_PX = 11  # the least spacing between two row names on a memory heatmap


def _weight_rows(weights, name):
    """Weights [N] or [R, N] -> ([K, N] array, K row labels): one row per head."""
    weights = as_array(weights)
    if weights.ndim == 1:
        return weights[None], [name]
    if weights.ndim == 2:
        if weights.shape[0] == 1:
            return weights, [name]
        return weights, [f"{name} {h + 1}" for h in range(weights.shape[0])]
    raise ValueError(f"{name}: expected weights of shape [N] or [R, N], got {list(weights.shape)}")


def _figure(data, layout):
    """A figure from trace and layout dicts, not validated: the memory view is rebuilt at every stroke and
    Plotly's validation would cost more than everything else (tests/test_viz.py validates these figures)."""
    return go.Figure(data=data, layout=layout, _validate=False)


def image_uri(image):
    """A [20, 20] image (ink 1) -> a PNG data URI, black on white (a few hundred bytes)."""
    pixels = (255 * (1 - np.clip(as_array(image), 0, 1))).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plotly_texts(texts):
    """Texts a person or a file supplied (label names, and row texts that quote them), escaped for Plotly,
    which renders a subset of HTML in every label and hover text, a link included: shown as plain text."""
    return [html.escape(str(text)) for text in texts]


def display_names(label_names, rows):
    """The display names of labels 0..C-1: as given, else "1".."C" for the labels the rows hold."""
    if label_names is not None:
        return list(label_names)
    classes = int(rows.label.max()) + 1 if rows is not None and len(rows.label) else 0
    return [str(c + 1) for c in range(classes)]


def row_codes(rows):
    """RowView -> float32 [N]: 0 for a row that holds no drawing, 1 for this step's drawing (label not
    given yet), 2 + c for a drawing of label c; drawn with _code_colourscale."""
    codes = np.where(as_array(rows.label) >= 0, as_array(rows.label) + 2, 1.0)
    return np.where(as_array(rows.writer) >= 0, codes, 0.0).astype(np.float32)


def _code_colourscale(classes):
    """A discrete colour scale for row_codes of `classes` labels -> (colorscale, zmin, zmax)."""
    colours = code_colours(classes)
    bands = len(colours)
    scale = [[edge, colour] for k, colour in enumerate(colours) for edge in (k / bands, (k + 1) / bands)]
    return scale, -0.5, bands - 0.5


def row_texts(rows, names):
    """What each row holds, in words: "x3, label 2", "x7, no label yet" or "no drawing", and the drawing
    this step's write overwrote there, if any ("x7, label 1, overwrote x3, label 2")."""
    replaced = rows.replaced.tolist() if rows.replaced is not None else [-1] * len(rows.writer)
    replaced_label = rows.replaced_label.tolist() if rows.replaced_label is not None else replaced
    texts = []
    for writer, label, same, old, old_label in zip(rows.writer.tolist(), rows.label.tolist(),
                                                   rows.same_label.tolist(), replaced, replaced_label):
        text = "no drawing" if writer < 0 else f"x{writer + 1}, " + (f"label {names[label]}" if label >= 0
                                                                     else "no label yet")
        if same:
            text += " ◆ an earlier drawing of this step's label"
        if old >= 0:
            text += f", overwrote x{old + 1}" + (f", label {names[old_label]}" if old_label >= 0 else "")
        texts.append(text)
    return texts


def _row_ticks(rows, row_px):
    """Names of the rows holding a drawing ("12 · x3": row 12 holds the drawing of step 3), every row
    when they fit, else thinned to one in ROW_LABEL_PX pixels -> (tick rows, tick texts)."""
    gap = max(1, math.ceil(ROW_LABEL_PX / row_px))
    values, texts, last = [], [], -gap
    for row, writer in enumerate(rows.writer.tolist()):
        if writer >= 0 and row - last >= gap:
            values.append(row)
            texts.append(f"{row} · x{writer + 1}")
            last = row
    return values, texts


def _strip(z, columns, axis, colorscale, zmin, zmax, hovertemplate, text=None):
    """A narrow heatmap beside a memory: z [N, K], one column per name in columns, on x axis `axis`."""
    return dict(type="heatmap", z=z, x=columns, xaxis=axis, colorscale=colorscale, zmin=zmin, zmax=zmax,
                showscale=False, text=text, hovertemplate=hovertemplate)


def _label_strip(rows, names, axis, row_px):
    """The traces of the 'label' strip beside a memory: the label each row holds (white: no drawing;
    grey: this step's drawing, label not given yet), the hover naming its drawing, and ◆ marks on the
    rows holding earlier drawings of this step's label."""
    scale, low, high = _code_colourscale(len(names))
    codes = _strip(row_codes(rows)[:, None], ["label"], axis, scale, low, high, "row %{y}: %{text}<extra></extra>",
                   np.array(plotly_texts(row_texts(rows, names)))[:, None])
    same = np.flatnonzero(as_array(rows.same_label))
    marks = dict(type="scatter", x=["label"] * len(same), y=same, xaxis=axis, mode="markers", hoverinfo="skip",
                 marker=dict(symbol="diamond", size=min(8, max(4, row_px + 1)), color=SAME_LABEL_COLOUR))
    return [codes, marks]


def _side_by_side(widths, gap=0.015):
    """Layout x axes for panels of the given relative widths, left to right, all on the y axis:
    {"xaxis": ..., "xaxis2": ...}. Built in one go: make_subplots and add_shape revalidate the figure
    at each call, several times slower than this."""
    widths = np.asarray(widths, dtype=float)
    edges = np.concatenate([[0], np.cumsum(widths / widths.sum() * (1 - gap * (len(widths) - 1)))])
    return {f"xaxis{i + 1 if i else ''}": dict(domain=[edges[i] + gap * i, edges[i + 1] + gap * i], anchor="y")
            for i in range(len(widths))}


def memory_heatmap(memory, title, read_weights=None, write_weights=None, rows=None, label_names=None):
    """A memory as a heatmap, one line per memory row, on a fixed -1..1 scale, with strips beside it.

    memory: [N, W]; read_weights, write_weights: optional [N] or [R, N], each drawn as a strip on its
    true 0..1 scale (one column per head); the rows taking at least OUTLINE_WEIGHT of a head are outlined
    (read green, written orange), so a near-uniform read outlines nothing. rows: an optional
    memory_rows.RowView, which adds a strip of the label each row holds (white: no drawing; grey: this
    step's drawing, whose label is not given yet), marks with ◆ the rows holding earlier drawings of this
    step's label, and names the rows by the drawing that wrote them ("12 · x3": row 12 holds x3).
    """
    memory = as_array(memory)
    if memory.ndim != 2:
        raise ValueError(f"memory: expected shape [N, W], got {list(memory.shape)}")
    N, W = memory.shape
    traces = [dict(type="heatmap", z=memory, colorscale=MEMORY_COLOURS, zmid=0, zmin=-VECTOR_RANGE,
                   zmax=VECTOR_RANGE, colorbar=dict(thickness=10, len=0.8, tickvals=[-VECTOR_RANGE, 0, VECTOR_RANGE]),
                   hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>")]
    outlines, axes = [], 1
    for weights, name, colour in ((read_weights, "read", READ_COLOUR), (write_weights, "write", WRITE_COLOUR)):
        if weights is None:
            continue
        block, labels = _weight_rows(weights, name)
        if block.shape[1] != N:
            raise ValueError(f"{name} weights cover {block.shape[1]} rows but the memory has {N}")
        axes += 1
        traces.append(_strip(block.T, labels, f"x{axes}", [[0, "white"], [1, colour]], 0, 1,
                             "%{x}, row %{y}: %{z:.3f}<extra></extra>"))
        outlines += [dict(type="rect", x0=-0.5, x1=W - 0.5, y0=int(r) - 0.5, y1=int(r) + 0.5, xref="x", yref="y",
                          line=dict(color=colour, width=2)) for r in np.flatnonzero(block.max(0) >= OUTLINE_WEIGHT)]
    yaxis = dict(autorange="reversed", title=dict(text="memory row"))
    if rows is not None:
        if len(rows.writer) != N:
            raise ValueError(f"the row descriptions cover {len(rows.writer)} rows but the memory has {N}")
        axes += 1
        traces += _label_strip(rows, display_names(label_names, rows), f"x{axes}", MEMORY_PLOT_PX / N)
        ticks, texts = _row_ticks(rows, MEMORY_PLOT_PX / N)
        yaxis.update(tickvals=ticks, ticktext=texts, tickfont=dict(size=9), title=dict(text="row · drawing it holds"))
    layout_axes = _side_by_side([W] + [max(2.0, 0.12 * W)] * (axes - 1))
    layout_axes["xaxis"]["title"] = dict(text="word")
    for strip in range(2, axes + 1):  # the strips' names upright: a narrow column has no room for them level
        layout_axes[f"xaxis{strip}"].update(tickangle=-90, tickfont=dict(size=9))
    return _figure(traces, layout=dict(title=dict(text=title, font=dict(size=14)), height=140 + MEMORY_PLOT_PX,
                                       margin=MARGIN, shapes=outlines, yaxis=yaxis, showlegend=False, **layout_axes))


def _line(name, values, colorscale, zmin, zmax, hovertemplate, text=None):
    """One line of addressing_figure: values [N] drawn as a one-row heatmap named `name` (its y position
    is set when the lines are stacked: Plotly.js fails on several one-row heatmaps on a category axis)."""
    return dict(type="heatmap", z=as_array(values)[None], name=name, colorscale=colorscale, zmin=zmin, zmax=zmax,
                showscale=False, text=None if text is None else [text], hovertemplate=hovertemplate)


def _weight_lines(name, values, colorscale, zmin, zmax):
    """The lines of one weighting [N] or [R, N], one per head, with the value in the hover."""
    block, names = _weight_rows(values, name)
    return [_line(n, b, colorscale, zmin, zmax, f"{n}, row %{{x}}: %{{z:.3f}}<extra></extra>")
            for n, b in zip(names, block)]


def addressing_figure(weights, title, similarity=None, usage=None, readable=None, rows=None, label_names=None):
    """Weightings over the memory rows as one compact heatmap, a line each, every line on its true scale.

    weights: {name: ([N] or [R, N], colour)} in display order (read, write, least used...), each drawn
    from white (0) to its colour (1) whatever its largest value, so a near-uniform read looks pale.
    similarity: optional [N] or [R, N], the key's cosine similarity to each row (Eq. 1), on -1 (red)..1
    (blue). usage: optional [N] (Eq. 4), on 0..USAGE_RANGE. readable: optional bool [N], the rows a masked
    read may land on. rows: an optional memory_rows.RowView: a line of the label each row holds (the
    hover names its drawing) and a line marking the rows holding earlier drawings of this step's label.
    """
    lines = [line for name, (values, colour) in weights.items()
             for line in _weight_lines(name, values, [[0, "white"], [1, colour]], 0, 1)]
    if similarity is not None:
        lines += _weight_lines("similarity", similarity, MEMORY_COLOURS, -1, 1)
    if usage is not None:
        lines += _weight_lines("usage", usage, [[0, "white"], [1, USAGE_COLOUR]], 0, USAGE_RANGE)
    if readable is not None:
        lines += _weight_lines("readable", readable, [[0, "white"], [1, READ_COLOUR]], 0, 1)
    if rows is not None:
        names = display_names(label_names, rows)
        scale, low, high = _code_colourscale(len(names))
        lines.append(_line("label held", row_codes(rows), scale, low, high, "row %{x}: %{text}<extra></extra>",
                           plotly_texts(row_texts(rows, names))))
        same = "◆ same label" if rows.label_known else "◆ not known yet"
        lines += _weight_lines(same, rows.same_label, [[0, "white"], [1, SAME_LABEL_COLOUR]], 0, 1)
    if not lines:
        raise ValueError("addressing_figure needs at least one weighting")
    lengths = sorted({line["z"].shape[1] for line in lines})
    if len(lengths) > 1:
        raise ValueError(f"the weightings cover different numbers of rows: {lengths}")
    for position, line in enumerate(lines):
        line["y"] = [position]
    # The scales on short lines: one long line is cut at the width of a panel beside another.
    note = "weights: white 0 to full colour 1"
    note += "<br>similarity: red -1 to blue 1" if similarity is not None else ""
    note += f"<br>usage: 0 to {USAGE_RANGE:g}" if usage is not None else ""
    return _figure(lines, layout=dict(
        title=dict(text=title, font=dict(size=14)), height=150 + 22 * len(lines), margin=dict(MARGIN, b=95),
        yaxis=dict(autorange="reversed", tickvals=list(range(len(lines))), ticktext=[line["name"] for line in lines],
                   automargin=True),
        xaxis=dict(title=dict(text="memory row", standoff=4)),
        annotations=[dict(text=note, xref="paper", yref="paper", x=0, y=0, yshift=-45, xanchor="left", yanchor="top",
                          align="left", showarrow=False, font=dict(size=10, color="#666666"))]))


def probabilities_figure(probabilities, class_names, height=300, legend=True):
    """Each model's predicted probabilities as grouped bars, each labelled with its percentage.

    probabilities: {model: [L]} over a model's L labels, class_names: the C <= L names of the labels in use
    (shown as plain text: Plotly would otherwise render HTML in them, a link included). A model with more
    labels than the names gets one more bar, NOT_IN_USE: the probability of all its other labels together.
    The percentages may rise above the plot (cliponaxis off) so that one at 100% is never cut, and are
    short and small so that two bars' percentages do not run into each other on a phone. legend=False
    leaves the models' names to the page (the Teach page's lines in the models' colours, model_colour).
    """
    names = plotly_texts(class_names)
    C = len(names)
    wider = any(as_array(values).shape[-1] > C for values in probabilities.values())
    bars = []
    for name, values in probabilities.items():
        values, colour = as_array(values), model_colour(name)
        if values.ndim != 1 or len(values) < C:
            raise ValueError(f"{name}: {list(values.shape)} probabilities for {C} classes")
        shown = np.append(values[:C], values[C:].sum()) if wider else values
        bars.append(go.Bar(x=names + [NOT_IN_USE] * wider, y=shown, name=plotly_texts([name])[0], marker_color=colour,
                           text=[f"{100 * p:.0f}%" for p in shown], textposition="outside", cliponaxis=False,
                           textfont=dict(size=10), hovertemplate="%{fullData.name}, %{x}: %{y:.3f}<extra></extra>"))
    return go.Figure(bars, layout=dict(
        barmode="group", bargap=0.25, bargroupgap=0.05, height=height, margin=dict(l=44, r=8, t=40 if legend else 18, b=30),
        showlegend=legend,
        yaxis=dict(range=[0, 1], tickformat=".0%", nticks=3, title=None, fixedrange=True),
        xaxis=dict(type="category", title=None, tickfont=dict(size=11 if C <= 8 else 9), fixedrange=True),
        legend=dict(orientation="h", x=0, y=1, yanchor="top", yref="container"),
        font=dict(size=11)))


def trace_figures(state, trace, batch_index=0, rows=None, label_names=None):
    """The addressing and memory figures of one model at one step, from the (state, trace) that
    model.step returned; rows: an optional memory_rows.RowView of that step (batch of 1) naming what
    each row holds.

    FLMN -> {"addressing", "feature_memory", "label_memory"}; MANN -> {"addressing", "memory"}.
    """
    b = batch_index
    if not isinstance(trace, (FLMNTrace, MANNTrace)):
        raise TypeError(f"expected the trace of an FLMN or MANN step, not {type(trace).__name__}")
    readable = None if trace.readable is None else trace.readable[b]
    if isinstance(trace, FLMNTrace):
        read, write = state.read_weights[b, 0], state.feature_write_weights[b, 0]
        label_write = trace.label_write_weights[b]
        weights = {"read": (read, READ_COLOUR), "feature write": (write, WRITE_COLOUR),
                   "label write": (label_write, WRITE_COLOUR),
                   "least used": (state.least_used[b, 0], LEAST_USED_COLOUR)}
        return {
            "addressing": addressing_figure(weights, "FLMN addressing", trace.similarity[b], state.usage[b], readable,
                                            rows, label_names),
            "feature_memory": memory_heatmap(state.feature_memory[b], "FLMN feature memory", read, write, rows,
                                             label_names),
            "label_memory": memory_heatmap(state.label_memory[b], "FLMN label memory", read, label_write, rows,
                                           label_names),
        }
    read, write = state.read_weights[b], trace.write_weights[b]
    weights = {"read": (read, READ_COLOUR), "write": (write, WRITE_COLOUR),
               "least used": (state.least_used[b], LEAST_USED_COLOUR)}
    return {
        "addressing": addressing_figure(weights, "MANN addressing", trace.similarity[b], state.usage[b], readable,
                                        rows, label_names),
        "memory": memory_heatmap(state.memory[b], "MANN memory", read, write, rows, label_names),
    }


def code_colours(classes):
    """The colour of each row_codes value: no drawing, no label yet, then labels 0..C-1."""
    return [NO_DRAWING_COLOUR, PENDING_COLOUR] + [LABEL_COLOURS[c % len(LABEL_COLOURS)] for c in range(classes)]


def _controller_vectors(state, trace, b):
    """{line name: vector [W]} of the controller figure: key, add vectors and read vector(s)."""
    if isinstance(trace, FLMNTrace):
        return {"key k": trace.key[b], "feature add a^f": trace.feature_add[b], "label add a^l": trace.label_add[b],
                "read r (label memory)": state.read[b]}
    if isinstance(trace, MANNTrace):
        R = trace.keys.shape[1]
        head = (lambda name, h: f"{name} {h + 1}") if R > 1 else (lambda name, h: name)
        vectors = {head("key k", h): trace.keys[b, h] for h in range(R)}
        if not np.array_equal(as_array(trace.written[b]), as_array(trace.keys[b])):  # write_content="add"
            vectors.update({head("add a", h): trace.written[b, h] for h in range(R)})
        vectors.update({head("read r", h): part for h, part in enumerate(state.read[b].reshape(R, -1))})
        return vectors
    raise TypeError(f"expected the trace of an FLMN or MANN step, not {type(trace).__name__}")


def controller_figure(state, trace, logits, title, label_names=None, batch_index=0):
    """The controller's side of one step: the key, the add vectors and the read vector on -1..1 (a line
    each), beside the classifier's logits for each label; the subtitle gives the write gate sigma(alpha)
    of Eq. (6) and the key strength beta when the model has one.

    state, trace: from model.step; logits: [C] or [1, C] (surgery.logits_of).
    """
    vectors = _controller_vectors(state, trace, batch_index)
    z = np.full((len(vectors), max(len(v) for v in vectors.values())), np.nan, dtype=np.float32)
    for i, values in enumerate(vectors.values()):  # NaN pads the shorter vectors: drawn blank
        z[i, : len(values)] = as_array(values)
    logits = as_array(logits).reshape(-1)
    given = plotly_texts(label_names) if label_names is not None else []
    names = given[: len(logits)] + [str(c + 1) for c in range(len(given), len(logits))]
    # The notes one to a line: a panel beside another is too narrow for them side by side.
    notes = ["write gate σ(α) " + "/".join(f"{g:.2f}" for g in as_array(trace.write_gate).tolist())
             + " (0: least-used row, 1: last read)"]
    if trace.strength is not None:
        strength = as_array(trace.strength[batch_index]).reshape(-1)
        notes.append("key strength β " + "/".join(f"{s:.1f}" for s in strength.tolist()))
    subtitle = "".join(f"<br><sup>{note}</sup>" for note in notes)
    # The colour bar lies under the vectors: beside them it would cover the logits' axis.
    vector_map = dict(type="heatmap", z=z, y=list(vectors), colorscale=MEMORY_COLOURS, zmid=0, zmin=-VECTOR_RANGE,
                      zmax=VECTOR_RANGE, hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>",
                      colorbar=dict(orientation="h", thickness=8, len=0.55, lenmode="fraction", x=0, xanchor="left",
                                    y=-0.12, yanchor="top", tickvals=[-VECTOR_RANGE, 0, VECTOR_RANGE],
                                    tickfont=dict(size=9)))
    logit_bars = dict(type="bar", x=names, y=logits, xaxis="x2", yaxis="y2", text=[f"{v:.1f}" for v in logits],
                      textposition="outside", cliponaxis=False, textfont=dict(size=9 if len(logits) > 8 else 11),
                      hovertemplate="label %{x}: logit %{y:.3f}<extra></extra>",
                      marker=dict(color=[model_colour(model_kind(trace)) if c == logits.argmax() else "#b0c4de"
                                         for c in range(len(logits))]))
    return _figure([vector_map, logit_bars], layout=dict(
        title=dict(text=f"{title}{subtitle}", font=dict(size=14)),
        height=max(250, 160 + 24 * len(vectors)), margin=dict(l=45, r=10, t=40 + 18 * len(notes), b=60),
        showlegend=False, xaxis=dict(domain=[0, 0.6], showticklabels=False),
        yaxis=dict(autorange="reversed", type="category", automargin=True),
        xaxis2=dict(domain=[0.72, 1], anchor="y2", type="category", title=dict(text="logits", standoff=2),
                    tickfont=dict(size=9 if len(logits) > 8 else 11)),
        yaxis2=dict(anchor="x2", zeroline=True)))


def model_kind(trace):
    """"FLMN" or "MANN": the kind of model whose step left this trace."""
    return "FLMN" if isinstance(trace, FLMNTrace) else "MANN"


def memory_view(step, rows, logits, label_names=None, parts=None):
    """The Plotly figures of the memory view of one model at one step (batch of 1), in order; the read
    is drawn as HTML (flmn_core.interactive.read_view).

    step: interactive.Step or (state, trace); rows: its memory_rows.RowView (memory_rows.describe_steps);
    logits: [C] of the step; parts: the names of the figures wanted (None: all) -> {"addressing",
    "feature_memory", "label_memory" (FLMN) or "memory" (MANN), "controller"}, those of them in parts.
    """
    def wanted(name):
        return parts is None or name in parts

    state, trace = memory_rows.state_and_trace(step)
    figures = {}
    if parts is None or set(parts) - {"controller"}:  # trace_figures' figures are built together
        figures.update((name, figure) for name, figure in trace_figures(state, trace, 0, rows, label_names).items()
                       if wanted(name))
    if wanted("controller"):
        figures["controller"] = controller_figure(state, trace, logits, f"{model_kind(trace)} controller",
                                                  label_names)
    return figures


