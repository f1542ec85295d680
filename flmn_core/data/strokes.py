"""Omniglot's stroke data: real people's pen trajectories, read, and drawn as the app's canvas draws them.

The official stroke files (github.com/brendenlake/omniglot, `strokes_background_small{1,2}.zip`) hold one
text file per drawing, `<set>/<Alphabet>/<characterNN>/<NNNN_MM>.txt`: lines `x,y,t` in motor space (x in
[0, 105], y in [-105, 0], t in ms) and `START` / `BREAK` lines between strokes. The same drawing's scan is
`images_background/<Alphabet>/<characterNN>/<NNNN_MM>.png` in Omniglot's image zip: the scans were drawn
from these very trajectories, so a drawing and its scan differ only by how they were rendered.

    drawings = read_drawings(zips)                    # {"Greek/character05/0394_03": [stroke [P, 3], ...]}
    rgba = render_canvas(drawings[key])               # [280, 280, 4] uint8, as the Teach page's canvas returns it
    points = to_canvas(drawings[key])                 # the strokes in canvas pixels, for a mouse to replay

No Streamlit here. Shapes: P points of a stroke, each (x, y, t) in image space (y down), pixels of the
105 x 105 frame, t in ms.
"""

import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from flmn_core.data.normalise import OMNIGLOT_SIZE

# The drawing canvas (the app's Teach page, and these strokes drawn as it draws): its side and default pen
# width, in canvas pixels. 280 px is the usual size of a pad for one character.
CANVAS_SIDE = 280
DEFAULT_PEN = 12
SCAN_SET = "images_background"  # the stroke subsets are all drawings of Omniglot's background set
SUPERSAMPLE = 2  # render at 2x and average down: the browser's canvas antialiases its strokes
# A fresh canvas takes up its pen only once it has loaded its (empty) initial drawing, asynchronously, a
# moment after it appears: a stroke begun before then is lost (streamlit-drawable-canvas 0.13's frontend).
# A person needs longer than this to see the fresh canvas and start drawing; a replay waits as long.
PEN_READY_MS = 300


def parse_strokes(text):
    """The text of one stroke file -> [stroke: float32 array [P, 3] of (x, y, t)], y in image space (down).

    Raises ValueError naming the line for anything other than START, BREAK, blank or `x,y,t` lines."""
    strokes, points = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line in ("START", "BREAK"):
            if points:
                strokes.append(np.array(points, dtype=np.float32))
                points = []
            continue
        try:
            x, y, t = (float(v) for v in line.split(","))
        except ValueError:
            raise ValueError(f"line {number} of the stroke file is neither START, BREAK nor x,y,t: {line[:40]!r}") from None
        points.append((x, -y, t))  # motor space to image space: y -> -y
    if points:
        strokes.append(np.array(points, dtype=np.float32))
    return strokes


def drawing_key(member):
    """A zip member 'strokes_background_small1/Greek/character05/0394_03.txt' -> 'Greek/character05/0394_03'."""
    path = PurePosixPath(member)
    return str(PurePosixPath(*path.parts[1:]).with_suffix(""))


def scan_member(key):
    """The scan of a drawing in Omniglot's image zip: 'Greek/character05/0394_03' ->
    'images_background/Greek/character05/0394_03.png'."""
    return f"{SCAN_SET}/{key}.png"


def read_drawings(paths):
    """Every drawing of the given stroke zips (the two subsets share Greek and Latin: read once) ->
    {key: strokes}, keys sorted, so characters and drawers come in a fixed order."""
    drawings = {}
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".txt") and not member.startswith("__MACOSX"):
                    drawings.setdefault(drawing_key(member), parse_strokes(archive.read(member).decode("ascii")))
    return dict(sorted(drawings.items()))


def stroke_zips(data_dir):
    """The stroke zips under a data folder (`omniglot-strokes/strokes_*.zip`), sorted."""
    return sorted(Path(data_dir, "omniglot-strokes").glob("strokes_*.zip"))


def to_canvas(strokes, side=CANVAS_SIDE):
    """Strokes in the 105 x 105 frame -> [array [P, 2] of (x, y) in pixels of a side x side canvas]."""
    return [stroke[:, :2] * (side / OMNIGLOT_SIZE) for stroke in strokes]


def render_canvas(strokes, side=CANVAS_SIDE, pen=DEFAULT_PEN, ink="#000000", paper="#ffffff"):
    """Draw strokes as the Teach page's canvas does -> its `image_data`: uint8 [side, side, 4], opaque.

    The canvas (Fabric.js's pencil) draws each stroke as a path `pen` pixels wide with round caps and
    joins, antialiased, over the background colour, and returns every pixel opaque. Here: lines and discs
    at SUPERSAMPLE times the size, averaged down; a one-point stroke (a tap) is a disc."""
    big, radius = side * SUPERSAMPLE, pen * SUPERSAMPLE / 2
    coverage = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(coverage)
    for points in to_canvas(strokes, side):
        points = [tuple(p) for p in points * SUPERSAMPLE]
        if len(points) > 1:
            draw.line(points, fill=255, width=max(1, round(2 * radius)), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    alpha = np.asarray(coverage.resize((side, side), Image.Resampling.BOX), dtype=np.float32)[..., None] / 255
    ink_rgb, paper_rgb = (np.array(ImageColor.getrgb(c), dtype=np.float32) for c in (ink, paper))
    rgb = paper_rgb * (1 - alpha) + ink_rgb * alpha
    return np.concatenate([rgb.round().astype(np.uint8), np.full((side, side, 1), 255, np.uint8)], axis=2)
