"""The one reading of a picture as the models see it: ink 1 on background 0, at 20 x 20.

    x = preprocess(image)          # training and evaluation: Omniglot's scans, MNIST's digits, as the papers
    x = normalise_drawing(image)   # a drawing from anywhere: first redrawn as an Omniglot scan would show it

The models learned from Omniglot's scans, drawn with one pen at one scale. A person's drawing (the app) or a
digit of MNIST (`evaluate --dataset mnist-normalised`) comes with another pen and at any size, so
`normalise_drawing` first redraws it as a scan would show it (`normalise`): its size and position brought into
the range of Omniglot's characters, its strokes at Omniglot's width. An Omniglot scan passes `normalise`
nearly as it is. Trusted input only: pictures from people go through flmn_core.interactive.uploads first.
"""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from flmn_core.model.configs import IMAGE_SIZE

OMNIGLOT_SIZE = 105  # Omniglot's frame: its images (and its pen strokes' coordinates) are 105 x 105 pixels
# Omniglot's scans as the models learned them, as `measure` sees them on 2,000 scans of the background set
# (tests/test_images.py measures them again): the larger side of a character's ink box, its 10th and 90th
# percentile, in pixels of the 105 x 105 frame;
SIZE_RANGE = (50.0, 84.0)
# where the centre of that box lies, the 5th and 95th percentile, in x and in y;
CENTRE_RANGE = (42.0, 59.5)
# the width of the strokes (`stroke_width`, the median; 4.4 to 5.3 from the 5th to the 95th percentile).
PEN_WIDTH = 4.85
WORK_SCALE = 2  # normalise at 2 x 105 pixels: half-pixel steps in the frame, a few milliseconds a drawing
MAX_ZOOM = 3.0  # a drawing is scaled by at most 3 (or 1/3): a speck does not become a character




def to_ink(image):
    """Any image -> float32 array [H, W] in [0, 1] with ink 1 and background 0, at its own size.

    Accepts a PIL image or a numpy array ([H, W], [H, W, 3] or [H, W, 4]; bool, integer or float).
    Polarity is decided from the border: a light border means dark ink (Omniglot, paper), a dark border
    means light ink (MNIST, a black canvas). An image with varying transparency is read by its alpha
    channel: opaque pixels are ink. Values are stretched so the darkest background is 0 and the strongest
    ink 1; a blank image gives all zeros.
    """
    array = _as_array(image)
    if array.ndim == 3:
        alpha = array[..., 3] if array.shape[2] == 4 else None
        if alpha is not None and alpha.min() < alpha.max():
            gray = alpha
            array = None
        else:
            gray = array[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    else:
        gray = array
    if array is not None and _border(gray).mean() > 0.5:
        gray = 1.0 - gray
    low, high = float(gray.min()), float(gray.max())
    if high - low < 1e-6:
        return np.zeros(gray.shape, dtype=np.float32)
    return ((gray - low) / (high - low)).astype(np.float32)


def _as_array(image):
    """PIL image or numpy array -> float32 array in [0, 1], [H, W] or [H, W, 3|4]."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(image, dtype=np.float32)
            return array / max(float(array.max()), 1.0)
        if image.mode in ("1", "L"):
            image = image.convert("L")
        elif image.mode in ("P", "LA", "PA", "RGBA") or "transparency" in image.info:
            image = image.convert("RGBA")
        else:
            image = image.convert("RGB")
        array = np.asarray(image)
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or min(array.shape[:2]) < 1:
        raise ValueError(f"expected an image of shape [H, W], [H, W, 3] or [H, W, 4], got {array.shape}")
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / (65535.0 if array.max() > 255 else 255.0)
    return np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0).astype(np.float32)  # clip first: no overflow in the cast


def _border(gray):
    """The pixels of the outermost ring of a [H, W] array."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def downscale(ink):
    """Ink images [..., H, W] (torch) -> [..., 20, 20] with an area filter; a non-square image is padded
    with background to a centred square first, so characters keep their shape."""
    H, W = ink.shape[-2:]
    if H != W:
        side = max(H, W)
        top, left = (side - H) // 2, (side - W) // 2
        ink = F.pad(ink, (left, side - W - left, top, side - H - top))
    lead = ink.shape[:-2]
    small = F.interpolate(ink.reshape(-1, 1, *ink.shape[-2:]), size=(IMAGE_SIZE, IMAGE_SIZE), mode="area")
    return small.reshape(*lead, IMAGE_SIZE, IMAGE_SIZE)


def preprocess(image):
    """The one preprocessing of the project: any image -> float32 tensor [20, 20], ink 1, background 0.

    Grayscale, polarity from the border (see `to_ink`), then the paper's 20 x 20 by an area filter.
    """
    return downscale(torch.from_numpy(to_ink(image)))


def normalise_drawing(image):
    """Any picture of a character (PIL image or numpy array) -> float32 tensor [20, 20], ink 1, background 0:
    read as `preprocess` reads Omniglot (`to_ink`, then `downscale`), with `normalise` between the two, so
    that its size, position and pen are Omniglot's. Black on white and white on black give the same tensor."""
    return downscale(normalise(to_ink(image)))


def normalise(ink):
    """Ink [H, W] (float, ink 1; `data.to_ink`) -> [210, 210] float32 of 0 and 1: the character as an
    Omniglot scan shows it, in a 105 x 105 frame drawn at WORK_SCALE.

    The ink's box is scaled, about its centre, into SIZE_RANGE (by at most MAX_ZOOM) and its centre moved
    into CENTRE_RANGE; then the strokes are thickened or thinned (a dilation or an erosion by a disc) to
    PEN_WIDTH. What already lies within Omniglot's ranges stays where it is, at its size."""
    binary = _frame(ink)
    if not binary.any():
        return binary
    binary = _fit_box(binary)
    radius = round((PEN_WIDTH - stroke_width(binary) / WORK_SCALE) * WORK_SCALE / 2)
    if radius > 0:
        binary = (_disc_sum(binary, radius) > 0).float()
    elif radius < 0:
        binary = (_disc_sum(binary, -radius) >= float(_disc(-radius).sum()) - 0.5).float()
    return binary


def measure(ink):
    """What `normalise` compares with Omniglot's ranges: ink [H, W] -> (size, centre x, centre y, stroke
    width), in pixels of the 105 x 105 frame; None for a blank picture."""
    binary = _frame(ink)
    if not binary.any():
        return None
    top, bottom, left, right = _box(binary)
    return (max(bottom - top, right - left) / WORK_SCALE, (left + right) / 2 / WORK_SCALE,
            (top + bottom) / 2 / WORK_SCALE, stroke_width(binary) / WORK_SCALE)


def stroke_width(binary):
    """The width of the strokes of a binary image [H, W] in pixels: a stroke of width w and length L covers
    w * L pixels and loses 2 * L to an erosion by one pixel, so w = 2 * area / lost (2 for strokes of one
    or two pixels, which the erosion takes whole)."""
    area = float(binary.sum())
    kept = float((_disc_sum(binary, 1) >= 4.5).sum())  # the cross of 5 pixels: all of them ink
    return 2 * area / max(area - kept, 1.0)


def _frame(ink):
    """Ink [H, W] -> binary [210, 210]: padded to a centred square (as data.downscale does), brought to the
    working size by the area filter, ink where it reaches half its strongest value (so that a faint thin
    line of a large photo survives)."""
    side = OMNIGLOT_SIZE * WORK_SCALE
    ink = torch.as_tensor(np.asarray(ink, dtype=np.float32))
    H, W = ink.shape
    pad_x, pad_y = max(H, W) - W, max(H, W) - H
    ink = F.pad(ink, (pad_x // 2, pad_x - pad_x // 2, pad_y // 2, pad_y - pad_y // 2))
    work = F.interpolate(ink[None, None], size=(side, side), mode="area")[0, 0]
    strongest = float(work.max())
    return (work >= 0.5 * strongest).float() if strongest > 0 else torch.zeros(side, side)


def _box(binary):
    """The ink's box of a binary image: (top, bottom, left, right), bottom and right exclusive."""
    rows, cols = torch.nonzero(binary, as_tuple=True)
    return float(rows.min()), float(rows.max()) + 1, float(cols.min()), float(cols.max()) + 1


def _fit_box(binary):
    """Scale and move the ink's box into Omniglot's ranges (see `normalise`) -> binary [side, side]."""
    side = binary.shape[0]
    top, bottom, left, right = _box(binary)
    size = max(bottom - top, right - left)
    low, high = (WORK_SCALE * v for v in SIZE_RANGE)
    zoom = min(max(min(max(size, low), high) / size, 1 / MAX_ZOOM), MAX_ZOOM)
    centre = torch.tensor([(left + right) / 2, (top + bottom) / 2])
    low, high = (WORK_SCALE * v for v in CENTRE_RANGE)
    target = centre.clamp(low, high)
    if zoom == 1 and torch.equal(target, centre):
        return binary
    # Output pixel p shows input pixel centre + (p - target) / zoom; grid_sample wants that in [-1, 1].
    pixels = torch.arange(side, dtype=torch.float32) + 0.5
    x = (centre[0] + (pixels - target[0]) / zoom) * 2 / side - 1
    y = (centre[1] + (pixels - target[1]) / zoom) * 2 / side - 1
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)[None]
    moved = F.grid_sample(binary[None, None], grid, mode="bilinear", align_corners=False)[0, 0]
    return (moved >= 0.5).float()


def _disc(radius):
    """A disc of the given radius in pixels -> [2r + 1, 2r + 1] of 0 and 1."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return (offsets[None, :] ** 2 + offsets[:, None] ** 2 <= radius ** 2 + 0.5).float()


def _disc_sum(binary, radius):
    """How many ink pixels lie within `radius` of each pixel: binary [H, W] -> [H, W] (outside is blank)."""
    disc = _disc(radius)
    return F.conv2d(binary[None, None], disc[None, None], padding=radius)[0, 0]
