"""Where a model's read went, as light HTML: bars of read weight on their true 0..1 scale.

    html = step_html(step, rows, images, label_names)   # a model's interactive.Step, or (state, trace)

The Teach page draws this view at every stroke and every label, for two models. As Plotly charts the two
took the browser about 0.2 s to draw each time (bench/app_latency.py); as plain HTML, styled by the
flmn-read classes of assets/style.css, they take a few milliseconds. Every bar's height in pixels is its
weight times a fixed number of pixels (PANEL_PX), with grid lines at 0, 0.5 and 1: never stretched to
the largest weight. Each bar carries its exact weight (data-weight) and a hover text naming its rows.

The markup is well-formed XML (tests parse it) and holds only what Streamlit's HTML sanitiser keeps:
no SVG, no scripts.
"""

import html
import math
from typing import NamedTuple

import numpy as np

from flmn_core import plotting
from flmn_core.interactive import figures, memory_rows

TOP_ROWS = 5  # the most-read rows drawn one by one, then the rest in groups
PANEL_PX = {"row": 100, "label": 50}  # pixels of weight 1 in the by-row and by-label panels
HEADROOM_PX = {"row": 44, "label": 16}  # above weight 1: the value (and the row's drawing)
THUMB_PX = 22  # the drawing a row holds, above its bar
NAME_CHARACTERS = 9  # a longer label name is cut (with "…") under its bar; its hover text has all of it
CROWDED = 8  # more labels than this: the by-label bars are named by number only
GRID = (0.0, 0.5, 1.0)
EMPTY_MOST = 0.5  # a read with at least this share on rows holding no drawing gets a line saying what that means
NOTHING_COLOUR = "#f0f0f0"
OTHER_ROWS_COLOUR = "#d9d9d9"


def step_html(step, rows, images, label_names=None):
    """The read of one model's step (interactive.Step or (state, trace), batch of 1) as HTML: read_html
    titled "FLMN read" or "MANN read"."""
    state, trace = memory_rows.state_and_trace(step)
    return read_html(state.read_weights[0], rows, images, f"{figures.model_kind(trace)} read", label_names)


def read_html(read_weights, rows, images, title, label_names=None):
    """The read of one step as HTML: a caption with how focused it is, then two panels of bars.

    read_weights: [N] or [R, N] (the bars show the mean over heads); rows: memory_rows.RowView of the
    step; images: the [20, 20] images of steps 0..t, for the drawings the rows hold. By row: the TOP_ROWS
    most-read rows, each with its drawing and label (◆: an earlier drawing of this step's label), then
    the other rows holding drawings, the rows holding none and, for a model that can read nothing (a null
    row), what the read took from nothing: together 1. By label: the same weight gathered by the label
    of the rows.
    """
    weights = plotting.as_array(read_weights)
    weights = weights[None] if weights.ndim == 1 else weights
    mean = weights.mean(0)
    if len(rows.writer) != len(mean):
        raise ValueError(f"the row descriptions cover {len(rows.writer)} rows but the read covers {len(mean)}")
    names = figures.display_names(label_names, rows)
    by_row = top_row_bars(mean, rows, names, images)
    by_label = label_bars(memory_rows.weight_by_label(weights, rows, len(names)).numpy(), names)
    nothing = max(0.0, 1.0 - float(mean.sum()))
    if nothing >= 0.0005:
        for bars in (by_row, by_label):
            bars.append(Bar(("nothing",), nothing, NOTHING_COLOUR, "read from nothing (no row)"))
    heads = "" if len(weights) == 1 else f" (mean of {len(weights)} heads)"
    focus = memory_rows.read_focus(weights, rows)
    caption = (f"<b>{html.escape(title)}: where the read went</b>{heads}<br/>"
               f"<small>{'<br/>'.join(html.escape(line) for line in focus_lines(focus, rows.label_known))}</small>")
    # Notes that one model's view has and the other's may not go under the panels, so that the panels of
    # two models side by side start at the same height.
    notes = "".join(f'<p class="flmn-read-note">{html.escape(line)}</p>'
                    for line in overwrite_lines(rows, names) + empty_rows_lines(focus))
    return (f'<figure class="flmn-read" data-title="{html.escape(title)}"><figcaption>{caption}</figcaption>'
            f'{_panel("row", "by row", by_row)}{_panel("label", "by label", by_label)}{notes}</figure>')


class Bar(NamedTuple):
    """One bar: the lines of its name, its weight, its fill colour, its hover text, and optionally a ◆
    mark (outlined) and the data URI of the drawing its row holds."""

    name: tuple
    weight: float
    colour: str
    hover: str
    same_label: bool = False
    thumbnail: str | None = None


def top_row_bars(mean, rows, names, images):
    """The by-row bars: the TOP_ROWS most-read rows one by one (ties: the lower row first), then the other
    rows holding drawings and the rows holding none -> [Bar]."""
    writer, codes, same = rows.writer.numpy(), figures.row_codes(rows), rows.same_label.numpy()
    colour_of = figures.code_colours(len(names))
    texts = figures.row_texts(rows, names)
    top = np.argsort(-mean, kind="stable")[:TOP_ROWS]
    bars = [Bar(_row_name(int(r), rows, names), mean[r], colour_of[int(codes[r])], f"row {r}: {texts[r]}",
                bool(same[r]), figures.image_uri(images[writer[r]]) if 0 <= writer[r] < len(images) else None)
            for r in top]
    rest = np.ones(len(mean), dtype=bool)
    rest[top] = False
    return bars + [Bar(("other", "rows"), mean[rest & (writer >= 0)].sum(), OTHER_ROWS_COLOUR,
                       "the other rows holding a drawing"),
                   Bar(("no", "drawing"), mean[rest & (writer < 0)].sum(), figures.NO_DRAWING_COLOUR,
                       "the other rows holding no drawing")]


def label_bars(by_label, names):
    """The by-label bars: by_label [C + 2] from memory_rows.weight_by_label -> [Bar]. Past CROWDED labels
    a bar is too narrow for a name: it shows the label's number, the hover its name."""
    colour_of = figures.code_colours(len(names))
    shown = [_short(name) if len(names) <= CROWDED else str(c + 1) for c, name in enumerate(names)]
    bars = [Bar((text,), by_label[c], colour_of[2 + c], f"the rows holding drawings of label {name}")
            for c, (name, text) in enumerate(zip(names, shown))]
    return bars + [Bar(("no", "label"), by_label[-2], figures.PENDING_COLOUR, "the row of this step's drawing"),
                   Bar(("no", "drawing"), by_label[-1], figures.NO_DRAWING_COLOUR, "the rows holding no drawing")]


def focus_lines(focus, label_known=True):
    """ReadFocus -> two lines: top weight and entropy; weight on the ◆ rows, on empty rows and on nothing
    (per head, a/b/c, for several heads). Before the step's label is given (label_known False), which rows
    hold its class is not known, and the line says so instead of a weight."""
    def each(values, digits=2):
        # abs() of what rounds to 0: a rounding error below zero must not print as "-0.00"
        return "/".join("–" if math.isnan(v) else f"{abs(v) if round(v, digits) == 0 else v:.{digits}f}"
                        for v in values.tolist())

    heads = len(focus.top_weight)
    focused = [f"top weight {each(focus.top_weight)}", f"entropy {each(focus.entropy)} of max"]
    same = f"on ◆ rows {each(focus.same_label)}" if label_known else "on ◆ rows: known once the label is given"
    where = [same, f"on empty rows {each(focus.no_drawing)}"]
    if float(focus.nothing.max()) >= 0.0005:
        where.append(f"nothing {each(focus.nothing)}")
    return [(f"{heads} heads: " if heads > 1 else "") + " · ".join(focused), " · ".join(where)]


def empty_rows_lines(focus):
    """Why a read mostly on empty rows can still be right (one line, or none): those rows hold no drawing,
    so they add little to what is read, and the read vector comes from the rows that do."""
    if float(focus.no_drawing.mean()) < EMPTY_MOST:
        return []
    return ["Most of this read lands on rows holding no drawing: they add little to what is read, so the "
            "rows that hold drawings decide the read vector even with a small share."]


def overwrite_lines(rows, names):
    """One line per row whose drawing this step's write replaced: which drawing it held, and whether it
    was the last row in memory holding its label -> [str]."""
    if rows.replaced is None:
        return []
    lines = []
    for row in (rows.replaced >= 0).nonzero().flatten().tolist():
        old, label = int(rows.replaced[row]), int(rows.replaced_label[row])
        held = f"x{old + 1}" + (f", label {names[label]}" if label >= 0 else "")
        last = label >= 0 and not bool((rows.label == label).any())
        lines.append(f"Overwritten now: row {row}, which held {held}"
                     + (f"; no row holds label {names[label]} any more" if last else ""))
    return lines


def _row_name(row, rows, names):
    """A row's name under its bar: ("◆ x3", "label 2") (the drawing of step 3, label 2; ◆: an earlier
    drawing of this step's label), ("x5", "no label") or ("row 12", "empty")."""
    writer, label = int(rows.writer[row]), int(rows.label[row])
    if writer < 0:
        return (f"row {row}", "empty")
    mark = "◆ " if bool(rows.same_label[row]) else ""
    return (f"{mark}x{writer + 1}", f"label {_short(names[label])}" if label >= 0 else "no label")


def _short(name):
    """A label name cut to NAME_CHARACTERS characters (with "…") to fit under a bar."""
    return name if len(name) <= NAME_CHARACTERS else name[: NAME_CHARACTERS - 1] + "…"


def _panel(kind, axis_title, bars):
    """One panel of bars as HTML: an axis of ticks at GRID, grid lines, then each bar's column."""
    px, headroom = PANEL_PX[kind], HEADROOM_PX[kind]
    height = px + headroom
    ticks = "".join(f'<span style="top:{headroom + (1 - v) * px - 6:.0f}px">{v:g}</span>' for v in GRID)
    grid = "".join(f'<div class="flmn-read-grid" data-at="{v:g}" style="top:{headroom + (1 - v) * px:.1f}px"></div>'
                   for v in GRID)
    columns = "".join(_bar(bar, px, height) for bar in bars)
    return (f'<div class="flmn-read-panel" data-panel="{kind}">'
            f'<div class="flmn-read-axis" style="height:{height}px"><i>{axis_title}</i>{ticks}</div>'
            f'<div class="flmn-read-bars">{grid}{columns}</div></div>')


def _bar(bar, px, height):
    """One bar's column: the row's drawing (if any), the value, the bar px * weight high, its name."""
    thumbnail = (f'<img src="{bar.thumbnail}" width="{THUMB_PX}" height="{THUMB_PX}" alt="{html.escape(bar.name[0])}"/>'
                 if bar.thumbnail else "")
    name = "".join(f"<span>{html.escape(line)}</span>" for line in bar.name)
    marked = " flmn-read-same" if bar.same_label else ""
    hover = html.escape(f"{bar.hover}: read weight {bar.weight:.3f}")
    return (f'<div class="flmn-read-bar" data-weight="{bar.weight:.9g}" title="{hover}">'
            f'<div class="flmn-read-stack" style="height:{height}px">{thumbnail}'
            f'<span class="flmn-read-value">{bar.weight:.2f}</span>'
            f'<div class="flmn-read-fill{marked}" style="height:{bar.weight * px:.1f}px;background:{bar.colour}"></div>'
            f'</div><div class="flmn-read-name">{name}</div></div>')
