"""What every figure of the project shares: its colours, its margins, and tensors turned into arrays.

The app's memory figures (flmn_core.interactive.figures), the results' curves (flmn_core.results.figures) and
the task's picture (flmn_core.interactive.protocol) take their colours from here, so a model has one colour
everywhere.
"""

import numpy as np
from plotly.colors import qualitative

SERIES_COLOURS = qualitative.Plotly  # one colour per model or checkpoint, in dict order
INK_COLOURS = [[0.0, "white"], [1.0, "black"]]  # images: ink 1 drawn black on white
MARGIN = dict(l=50, r=20, t=40, b=40)


def as_array(values):
    """A tensor, array or list -> float32 numpy array (detached, on the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def series_colours():
    """Series colours, cycling."""
    while True:
        yield from SERIES_COLOURS
