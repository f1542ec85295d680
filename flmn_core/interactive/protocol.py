"""The one-shot task as a picture (the How it works page)."""

import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.plotting import series_colours


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
    colours = [c for _, c in zip(range(classes), series_colours())]
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
