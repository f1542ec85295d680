"""A stand-in for streamlit_drawable_canvas.st_canvas in AppTest, which cannot draw on the real canvas.

    canvas = install(monkeypatch)         # `import streamlit_drawable_canvas` now gives the fake
    canvas.draw(picture, strokes=2)       # then at.run(): the page reads it through its canvas code

The page calls it as it calls the real canvas and gets what the real one returns: `image_data`, an
H x W x 4 uint8 array with the background included, and `json_data` with one object per stroke. As on the
real one, a drawing belongs to the canvas it was made on: a canvas with another key (a fresh canvas after a
label, Clear, another ink) is empty until drawn on, and a new drawing calls the page's on_change once.

The fake replaces the whole module in sys.modules: the real one cannot even be imported outside a
running Streamlit (its component registers itself on import).
"""

import sys
from types import ModuleType, SimpleNamespace

import numpy as np
from PIL import Image


class FakeCanvas:
    """st_canvas(**kwargs) -> result; `calls` keeps the keyword arguments of every call, `key` the last key."""

    def __init__(self):
        self.key, self.calls = None, []
        self.drawings = {}  # canvas key -> (rgba, strokes)
        self.unsent = set()  # keys whose drawing the page has not been told about (its on_change)

    def draw(self, picture, strokes=1):
        """Put a picture (any uint8 or bool array: H x W, H x W x 3 or x 4) on the canvas last shown."""
        array = np.asarray(picture)
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        rgba = array if array.ndim == 3 and array.shape[2] == 4 else np.asarray(Image.fromarray(array).convert("RGBA"))
        self.drawings = {self.key: (rgba, strokes)}  # only the canvas shown holds a drawing; the old ones are gone
        self.unsent.add(self.key)

    def erase(self):
        """The canvas's own reset (its toolbar): no strokes, on the canvas last shown."""
        self.drawings.pop(self.key, None)
        self.unsent.add(self.key)

    def __call__(self, key=None, on_change=None, initial_drawing=None, **kwargs):
        self.key = key
        self.calls.append(dict(kwargs, key=key, initial_drawing=initial_drawing))
        if key in self.unsent:
            self.unsent.discard(key)
            if on_change is not None:
                on_change()
        if key not in self.drawings and initial_drawing is not None:
            # As the real one: until the browser sends a drawing, the initial drawing's strokes and no image.
            return SimpleNamespace(image_data=None, json_data=dict(initial_drawing))
        rgba, strokes = self.drawings.get(key, (None, 0))
        return SimpleNamespace(image_data=None if rgba is None else rgba.copy(),
                               json_data={"objects": [{"type": "path"}] * strokes})


def install(monkeypatch):
    """Make `import streamlit_drawable_canvas` give a module whose st_canvas is a new FakeCanvas (undone
    by monkeypatch at the end of the test) -> that FakeCanvas."""
    canvas = FakeCanvas()
    module = ModuleType("streamlit_drawable_canvas")
    module.st_canvas = canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    return canvas
