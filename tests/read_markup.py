"""The read view's HTML (flmn_core.interactive.read_view.read_html) parsed back into what it draws, for the tests."""

import re
import xml.etree.ElementTree as ET
from typing import NamedTuple


class DrawnBar(NamedTuple):
    name: str  # the lines under the bar, joined by " / "
    weight: float  # its data-weight
    height_px: float  # the drawn bar's height
    same_label: bool  # outlined as a ◆ row
    thumbnail: str | None  # the data URI of the drawing shown above it
    hover: str


class DrawnRead(NamedTuple):
    title: str  # data-title: "FLMN read"
    caption: str  # the caption's text, lines joined by " / "
    bars: dict  # {"row": [DrawnBar], "label": [DrawnBar]}
    unit_px: dict  # {"row": pixels from the grid line at 0 to the one at 1, "label": ...}
    notes: list  # the lines under the panels (rows overwritten, a read on empty rows)


def _classes(element):
    return element.get("class", "").split()


def _style_px(element, prop):
    return float(re.search(rf"(?:^|;){prop}:([-\d.]+)px", element.get("style")).group(1))


def _find(element, cls):
    return [e for e in element.iter() if cls in _classes(e)]


def parse(markup):
    """read_html's markup -> DrawnRead. Fails (ParseError) on markup that is not well-formed."""
    root = ET.fromstring(markup)
    assert "flmn-read" in _classes(root), root.get("class")
    caption = " / ".join(part.strip() for part in root.find("figcaption").itertext() if part.strip())
    bars, unit_px = {}, {}
    for panel in _find(root, "flmn-read-panel"):
        grid = {float(line.get("data-at")): _style_px(line, "top") for line in _find(panel, "flmn-read-grid")}
        unit_px[panel.get("data-panel")] = grid[0.0] - grid[1.0]
        drawn = []
        for bar in _find(panel, "flmn-read-bar"):
            fill, = _find(bar, "flmn-read-fill")
            name, = _find(bar, "flmn-read-name")
            image = bar.find(".//img")
            drawn.append(DrawnBar(" / ".join(name.itertext()), float(bar.get("data-weight")),
                                  _style_px(fill, "height"), "flmn-read-same" in _classes(fill),
                                  None if image is None else image.get("src"), bar.get("title")))
        bars[panel.get("data-panel")] = drawn
    notes = ["".join(note.itertext()) for note in _find(root, "flmn-read-note")]
    return DrawnRead(root.get("data-title"), caption, bars, unit_px, notes)
