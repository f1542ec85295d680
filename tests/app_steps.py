"""The steps the AppTest tests of the Teach page share: open it, draw on the (fake) canvas, click a label,
read texts."""

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 60  # seconds per run; the first run imports torch and loads the checkpoints


def start(**params):
    """A new session on the Teach page after its first run, opened with these query parameters (a link,
    or a reload)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({key: str(value) for key, value in params.items()})
    at.run()
    assert not at.exception, at.exception
    return at


def markdown_sources(elements):
    """The values of AppTest elements as one string, as the page wrote them (Markdown escapes included)."""
    return " ".join(str(e.value) for e in elements)


def texts(elements):
    """What the elements read on the page: their Markdown's escapes resolved, word joiners dropped."""
    return re.sub(r"\\([!-/:-@[-`{-~])", r"\1", markdown_sources(elements)).replace("\u2060", "")


def show(at, canvas, picture, strokes=1):
    """Draw a picture on the canvas shown (tests/fake_canvas.py), and rerun."""
    canvas.draw(picture, strokes)
    at.run()
    assert not at.exception, at.exception


def label(at, value):
    """Click the button of label value (1..C)."""
    at.button(key=f"label-{value - 1}").click().run()
    assert not at.exception, at.exception
