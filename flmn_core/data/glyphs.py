"""Novel characters drawn from random strokes: an episode source that ships with the project.

With no data on the machine the app still needs characters a model has never seen, drawn a few times
each by different hands, as Omniglot's are. A character is a few strokes (lines, arcs, hooks, curves,
dots) in the 105 x 105 frame of an Omniglot image; a drawing of it jitters the control points, the pen
width, the position, size and slant, as another person would.

    >>> alphabet = make_alphabet(5, seed=0)
    >>> image = render(alphabet[0], drawer_seed=3)            # uint8 [105, 105], black ink on white
    >>> pool = sample_glyph_pool(20, 20, seed=0)             # [20, 20, 20, 20], as Omniglot's images
    >>> batch = flmn_core.sample_episodes(pool, 1, torch.Generator().manual_seed(0))
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from flmn_core.data.normalise import OMNIGLOT_SIZE, preprocess

MARGIN = 18  # a character is scaled into [MARGIN, 105 - MARGIN], leaving room for a drawer's shift
STROKES_PER_CHARACTER = ((1, 2, 3, 4), (0.08, 0.42, 0.33, 0.17))  # how many strokes, with their odds
STROKE_KINDS = (("line", "arc", "hook", "curve", "dot"), (0.34, 0.24, 0.15, 0.19, 0.08))
JOIN_PROBABILITY = 0.65  # a new stroke often starts on an earlier one, so characters hang together

# How much one drawing differs from another of the same character (pixels of the 105 x 105 frame).
POINT_JITTER = 2.2  # standard deviation of each control point
MAX_SHIFT = 4.0  # the whole drawing moves by up to this much in x and y
MAX_SLANT = 0.08  # rotation in radians
MAX_STRETCH = 0.08  # x and y scale in 1 +- this
PEN_WIDTH = (2.5, 4.5)  # pen width range


@dataclass(frozen=True)
class Stroke:
    """One pen stroke: kind ("line", "arc", "hook", "curve" or "dot") and the control points
    ((x, y), ...) it passes through in the 105 x 105 frame (a dot has one)."""

    kind: str
    points: tuple


@dataclass(frozen=True)
class Character:
    """A character: its strokes in drawing order."""

    strokes: tuple


def make_alphabet(classes, seed):
    """`classes` new characters, the same for the same seed -> list of Character."""
    if int(classes) != classes or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    rng = np.random.default_rng(seed)
    return [_make_character(rng) for _ in range(int(classes))]


def _make_character(rng):
    """A few random strokes (the first never a dot, a single one never a line), scaled and centred into the frame."""
    counts, odds = STROKES_PER_CHARACTER
    kinds, kind_odds = STROKE_KINDS
    strokes = []
    count = rng.choice(counts, p=odds)
    for i in range(count):
        kind = rng.choice(kinds, p=kind_odds)
        if i == 0 and (kind == "dot" or (count == 1 and kind == "line")):
            kind = "hook"  # a lone dot or one bare line would hardly tell characters apart
        strokes.append(Stroke(str(kind), _STROKE_MAKERS[kind](rng, _start_point(rng, strokes))))
    return Character(_fit_to_frame(strokes))


def _start_point(rng, strokes):
    """Where the next stroke starts: on a control point of an earlier stroke, or anywhere."""
    if strokes and rng.random() < JOIN_PROBABILITY:
        stroke = strokes[rng.integers(len(strokes))]
        return np.array(stroke.points[rng.integers(len(stroke.points))])
    return rng.uniform(30, 75, size=2)


def _heading(rng):
    """A stroke direction: mostly near horizontal, vertical or diagonal, as in most scripts."""
    return rng.choice([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]) * math.pi + rng.normal(0, 0.15)


def _line(rng, start):
    """A straight stroke of 25 to 55 px (three points, so a drawer can bend it a little)."""
    direction = _unit(_heading(rng))
    end = start + rng.uniform(25, 55) * direction
    return _points([start, (start + end) / 2, end])


def _arc(rng, start):
    """Part of a circle of radius 9 to 24 px through `start`, sweeping 100 to 300 degrees either way."""
    radius, first = rng.uniform(9, 24), rng.uniform(0, 2 * math.pi)
    centre = start - radius * _unit(first)
    sweep = math.radians(rng.uniform(100, 300)) * rng.choice([-1, 1])
    angles = first + np.linspace(0, sweep, max(3, int(abs(sweep) / 0.6)))
    return _points([centre + radius * _unit(a) for a in angles])


def _hook(rng, start):
    """A line that curls back at its end."""
    heading = _heading(rng)
    turn = rng.choice([-1, 1]) * rng.uniform(1.6, 2.4)
    end = start + rng.uniform(25, 45) * _unit(heading)
    bend = end + rng.uniform(6, 10) * _unit(heading + turn / 2)
    tip = bend + rng.uniform(6, 12) * _unit(heading + turn)
    return _points([start, (start + end) / 2, end, bend, tip])


def _curve(rng, start):
    """A wandering stroke: three or four segments of 14 to 24 px turning by up to 70 degrees."""
    heading, points = _heading(rng), [start]
    for _ in range(rng.integers(3, 5)):
        heading += rng.uniform(-1.2, 1.2)
        points.append(points[-1] + rng.uniform(14, 24) * _unit(heading))
    return _points(points)


def _dot(rng, start):
    """A dot near where it starts."""
    return _points([start + rng.normal(0, 6, size=2)])


_STROKE_MAKERS = {"line": _line, "arc": _arc, "hook": _hook, "curve": _curve, "dot": _dot}


def _unit(angle):
    return np.array([math.cos(angle), math.sin(angle)])


def _points(points):
    """Numpy points -> a tuple of (x, y) float pairs (hashable, plain values)."""
    return tuple((float(x), float(y)) for x, y in points)


def _fit_to_frame(strokes):
    """Scale (at most x1.6, keeping the aspect) and move the strokes so that their control points fill
    the frame inside MARGIN, centred."""
    every = np.array([p for s in strokes for p in s.points])
    low, high = every.min(0), every.max(0)
    room = OMNIGLOT_SIZE - 2 * MARGIN
    scale = min(room / max(float((high - low).max()), 1e-6), 1.6)
    offset = OMNIGLOT_SIZE / 2 - scale * (low + high) / 2
    return tuple(Stroke(s.kind, _points(scale * np.array(s.points) + offset)) for s in strokes)


def render(character, drawer_seed):
    """One drawing of a character by one drawer -> uint8 [105, 105], ink 0 on a 255 background.

    The same drawer_seed gives the same drawing; another seed moves every control point a little and
    changes the pen width, position, size and slant."""
    rng = np.random.default_rng(drawer_seed)
    width = rng.uniform(*PEN_WIDTH)
    transform = _drawer_transform(rng)
    image = Image.new("L", (OMNIGLOT_SIZE, OMNIGLOT_SIZE), 255)
    draw = ImageDraw.Draw(image)
    for stroke in character.strokes:
        points = transform(np.array(stroke.points) + rng.normal(0, POINT_JITTER, size=(len(stroke.points), 2)))
        if stroke.kind == "dot":
            _round_tip(draw, points[0], 0.8 * width)
            continue
        path = [tuple(p) for p in _smooth(points)]
        draw.line(path, fill=0, width=round(width), joint="curve")
        _round_tip(draw, path[0], width / 2)
        _round_tip(draw, path[-1], width / 2)
    return np.asarray(image, dtype=np.uint8)


def _drawer_transform(rng):
    """A drawer's affine change of the whole character about the frame's centre: points [P, 2] -> [P, 2]."""
    angle = rng.uniform(-MAX_SLANT, MAX_SLANT)
    stretch = 1 + rng.uniform(-MAX_STRETCH, MAX_STRETCH, size=2)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotation * stretch  # stretch the x and y of the result's columns
    centre = OMNIGLOT_SIZE / 2
    return lambda points: (points - centre) @ matrix.T + centre + shift


def _smooth(points, per_segment=8):
    """A Catmull-Rom spline through points [P, 2] -> a dense path [(P - 1) * per_segment + 1, 2], so a
    jittered stroke bends smoothly instead of kinking at each control point."""
    if len(points) < 3:
        return points
    padded = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    path = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:]):
        path.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                           + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    path.append(points[-1:])
    return np.concatenate(path)


def _round_tip(draw, centre, radius):
    x, y = centre
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)


def sample_glyph_pool(classes, drawings, seed):
    """A pool of `classes` new characters drawn `drawings` times each, preprocessed as Omniglot
    -> float32 tensor [classes, drawings, 20, 20] (ink 1), for flmn_core.sample_episodes."""
    if int(drawings) != drawings or drawings < 1:
        raise ValueError(f"drawings must be a positive integer, got {drawings!r}")
    alphabet = make_alphabet(classes, seed)
    # Each drawing gets its own drawer seed, from a stream apart from the alphabet's.
    drawer_seeds = np.random.default_rng([seed, 1]).integers(0, 2**32, size=(len(alphabet), int(drawings)))
    return torch.stack([torch.stack([preprocess(render(character, int(s))) for s in seeds])
                        for character, seeds in zip(alphabet, drawer_seeds)])
