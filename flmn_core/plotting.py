"""What every figure of the project shares: its colours, its margins, and tensors turned into arrays.

The app's memory figures (flmn_core.interactive.figures), the results' curves (flmn_core.results.figures) and
the task's picture (flmn_core.interactive.protocol) take their colours from here. Each model has one colour
everywhere, `model_colour(name)`: every FLMN a blue, every MANN a red or an orange, a person green and the
papers' human players black, so that a page comparing them reads the same as the next one.
"""

import zlib

import numpy as np
from plotly.colors import qualitative

SERIES_COLOURS = qualitative.Plotly  # series that are not models (e.g. classes in a picture), in order
MARGIN = dict(l=50, r=20, t=40, b=40)

# One colour per checkpoint; the app's default pair (flmn-conv, mann-exp1) the strongest blue and red.
MODEL_COLOURS = {
    "flmn-conv": "#1f5fbf", "flmn-pens": "#5b9bd5", "flmn-retrieve": "#17a2b8", "flmn-exp1": "#3d3d9e",
    "flmn-exp2": "#8fb3de", "flmn-15": "#0b3d7a",
    "mann-exp1": "#d62728", "mann-exp2": "#ff7f0e", "mann4-santoro": "#a0522d", "mann-15": "#e377c2",
}
# Any other checkpoint or series of a kind takes a shade of its kind's family, the same for the same name.
KIND_COLOURS = {"flmn": ("#1f5fbf", "#4f81c7", "#2b6f9e", "#6c8ebf"), "mann": ("#d62728", "#e8612c", "#b03a48", "#c4502b")}
PERSON_COLOUR = "#2ca02c"  # the person playing the models' game
HUMAN_PLAYERS_COLOUR = "#222222"  # Santoro et al.'s human players
OTHER_COLOUR = "#7f7f7f"  # a series that is none of these


def as_array(values):
    """A tensor, array or list -> float32 numpy array (detached, on the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def series_colours():
    """Series colours, cycling."""
    while True:
        yield from SERIES_COLOURS


def model_colour(name):
    """The colour of a model, a checkpoint or a kind, by name: "flmn-conv", "mann-exp1", "FLMN", "MANN (LRUA),
    4 read heads (Santoro et al. 2016)", "You", "Human players ..." -> a CSS colour."""
    text = str(name)
    if text in MODEL_COLOURS:
        return MODEL_COLOURS[text]
    lowered = text.lower()
    if lowered.startswith("you"):
        return PERSON_COLOUR
    if "human" in lowered:
        return HUMAN_PLAYERS_COLOUR
    for kind, family in KIND_COLOURS.items():
        if lowered.startswith(kind):
            return family[zlib.crc32(text.encode()) % len(family)]
    return OTHER_COLOUR


def colour_by_model(figure):
    """Give each trace of a figure its model's colour (model_colour of the trace's name, or of its first
    word, e.g. "flmn-conv (train)"), lines and markers alike -> the figure. For figures built with colours
    in series order."""
    for trace in figure.data:
        name = str(trace.name or "")
        colour = MODEL_COLOURS.get(name.split(" ")[0]) or model_colour(name)
        if hasattr(trace, "line"):
            trace.line.color = colour
        if hasattr(trace, "marker"):
            trace.marker.color = colour
    return figure
