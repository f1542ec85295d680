"""Untrusted pictures in: uploaded files and canvas drawings -> the [20, 20] tensor the models read.

This is the only door through which images from people enter the project. Everything that can go wrong
with such a picture becomes an ImageInputError whose message says what to do, so a page can show it and
keep the episode so far. Never imports streamlit.

    image = read_upload(uploaded.getvalue(), uploaded.name)   # or image_from_canvas(canvas.image_data)
    x = prepare(image)                                        # float32 [20, 20], ink 1, background 0

`prepare` reads a picture that passed these checks as flmn_core.data.normalise.normalise_drawing does: redrawn
at the size, position and pen width of Omniglot's scans, as the models learned them.
"""

import io
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from flmn_core.data.normalise import downscale, normalise, to_ink

# The upload limit in Streamlit's megabytes (1024 * 1024 bytes). .streamlit/config.toml sets the same number
# as server.maxUploadSize, because the server enforces only that one; tests/test_images.py checks they agree.
MAX_UPLOAD_MB = 5
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# Largest side accepted. A 20 x 20 input needs nothing near this, and a side limit checked on the header,
# before any pixel is decoded, is what stops a tiny file that inflates to gigabytes (a decompression bomb).
MAX_SIDE = 4096
# Smallest side accepted: below this a picture cannot hold a recognisable character.
MIN_SIDE = 8
# Decoded uploads are shrunk to at most this side: the 20 x 20 result barely changes, but preprocessing a
# 4096 x 4096 RGBA picture in float32 would take about 270 MB per request on a server shared by many people.
WORK_SIDE = 1024
# Least ink (sum of the [20, 20] tensor, in pixels) of a drawing; the faintest Omniglot character has 0.83.
MIN_INK = 0.5
# Formats Pillow may try. Restricting the list keeps rarely used parsers (and EPS, which runs Ghostscript)
# away from untrusted bytes.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
EMPTY_MESSAGE = "The image is empty (no visible strokes): draw a character first, or upload a picture of one."


class ImageInputError(ValueError):
    """A picture that cannot be used; the message tells the person what to do instead."""


def read_upload(data, name="upload"):
    """The bytes of an uploaded file -> a PIL image in mode "L", "RGB" or "RGBA", at most WORK_SIDE a side.

    Refuses, with ImageInputError: empty files, files over MAX_UPLOAD_BYTES, anything that is not a PNG,
    JPEG, GIF, BMP or WebP (an SVG or text file renamed .png, random bytes), pictures whose header claims
    more than MAX_SIDE or less than MIN_SIDE pixels a side, and damaged or truncated files (they raise
    instead of being filled with gray, so a half-received photo is never shown as a character). An
    animated GIF or PNG gives its first frame; 16-bit, CMYK, palette and transparent pictures are converted.
    """
    if len(data) == 0:
        raise ImageInputError(f"{name} is empty (0 bytes): choose the file again.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageInputError(f"{name} is {len(data):,} bytes; the limit is {MAX_UPLOAD_MB} MB ({MAX_UPLOAD_BYTES:,} "
                              "bytes). Upload a smaller picture (a character needs only a few kilobytes).")
    with _input_errors(name, data):
        with Image.open(io.BytesIO(data), formats=FORMATS) as header:  # reads the header only
            _check_size(*header.size, name)
            header.verify()  # checks the structure (and PNG checksums); the image is unusable after this
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            image.load()  # decodes the first frame fully; a truncated file raises here
            image = ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
        image = _standard_mode(image)
    width, height = image.size
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    if min(image.size) < MIN_SIDE:  # named by the size uploaded, not the size it was brought down to
        raise ImageInputError(f"{name} is {width} x {height} pixels: too long and thin to hold a character once "
                              f"brought down to at most {WORK_SIDE} pixels a side. Crop it around the character.")
    return image


def image_from_canvas(rgba):
    """A streamlit-drawable-canvas result (`image_data`: [H, W, 4] uint8, or None before any stroke) ->
    a copy of it, so the session's episode never shares memory with the component's next result."""
    if rgba is None:
        raise ImageInputError(EMPTY_MESSAGE)
    if not (isinstance(rgba, np.ndarray) and rgba.ndim == 3 and rgba.shape[2] == 4 and rgba.dtype == np.uint8):
        raise ImageInputError(f"The canvas sent {_describe(rgba)}; expected an H x W x 4 array of uint8 (RGBA). "
                              "Reload the page and draw again.")
    _check_size(rgba.shape[1], rgba.shape[0], "The drawing")
    return rgba.copy()


def prepare(image):
    """A picture from read_upload or image_from_canvas (or any PIL image or numpy array) -> float32
    tensor [20, 20], ink 1, background 0, as `normalise_drawing` reads it (flmn_core.data.normalise). Blank
    or invalid input -> ImageInputError."""
    ink = to_ink(_checked(image))
    if float(downscale(torch.from_numpy(ink)).sum()) < MIN_INK:
        raise ImageInputError(EMPTY_MESSAGE)
    return downscale(normalise(ink))


def _checked(image):
    """Validate a PIL image or numpy array before preprocessing; return it in a form preprocess reads."""
    if isinstance(image, Image.Image):
        _check_size(*image.size, "The image")
        with _input_errors("The image"):
            return _standard_mode(image)
    if isinstance(image, np.ndarray):
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))) or image.dtype.kind not in "biuf":
            raise ImageInputError(f"Expected a picture as an H x W, H x W x 3 or H x W x 4 array of numbers, "
                                  f"got {_describe(image)}.")
        _check_size(image.shape[1], image.shape[0], "The image")
        return image
    raise ImageInputError(f"Expected a picture (an uploaded file or a drawing), got {_describe(image)}.")


def _check_size(width, height, what):
    """Refuse sides above MAX_SIDE (memory, decompression bombs) or below MIN_SIDE (no room for a character)."""
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageInputError(f"{what} is {width} x {height} pixels; the limit is {MAX_SIDE} x {MAX_SIDE}. "
                              "Scale it down and try again.")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageInputError(f"{what} is {width} x {height} pixels; it must be at least {MIN_SIDE} x {MIN_SIDE} "
                              "to hold a character.")


def _standard_mode(image):
    """A PIL image in any mode -> "L", "RGB" or "RGBA", the modes preprocess reads without guessing.

    16- and 32-bit grayscale ("I;16", "I", "F") are stretched to 0..255 (preprocess stretches to [0, 1]
    anyway); any transparency (alpha channel, transparent palette entry) keeps an alpha channel, which
    preprocess then reads as the ink; CMYK, YCbCr and palettes become RGB.
    """
    if image.mode.startswith("I") or image.mode == "F":
        gray = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = gray.min(), gray.max()
        scaled = (gray - low) * (255 / (high - low)) if high > low else np.zeros_like(gray)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.has_transparency_data:
        return image.convert("RGBA")
    if image.mode in ("1", "L"):
        return image.convert("L")
    return image.convert("RGB")


@contextmanager
def _input_errors(name, data=b""):
    """Turn Pillow's many failure types into ImageInputError. Its format parsers raise OSError,
    SyntaxError, ValueError, struct.error, EOFError and more on malformed files; for a person they all mean
    the same thing: this file cannot be read as a picture."""
    try:
        yield
    except ImageInputError:
        raise
    except UnidentifiedImageError as error:
        if _looks_like_text(data):
            message = (f"{name} is not an image: it looks like text (an SVG, HTML or text file). Upload a PNG, "
                       "JPEG, GIF, BMP or WebP picture; export an SVG to PNG first.")
        else:
            message = f"{name} is not an image this app can read: upload a PNG, JPEG, GIF, BMP or WebP picture."
        raise ImageInputError(message) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageInputError(f"{name} claims to be more than {Image.MAX_IMAGE_PIXELS:,} pixels (a "
                              f"decompression bomb?); the limit is {MAX_SIDE} x {MAX_SIDE}.") from error
    except Exception as error:
        raise ImageInputError(f"{name} is damaged or incomplete ({type(error).__name__}: {error}). "
                              "Save or export it again and upload the new file.") from error


def _looks_like_text(data):
    """Whether the first kilobyte reads as UTF-8 text (SVG and HTML are text), allowing one character cut
    at the end of the kilobyte."""
    text = bytes(data[:1024]).decode("utf-8", errors="replace")
    odd = sum(c == "\ufffd" or not (c.isprintable() or c in "\t\r\n") for c in text)
    return bool(text.strip()) and odd <= 1


def _describe(value):
    """A short description of an unexpected value for an error message."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {tuple(value.shape)} and type {value.dtype}"
    return f"a value of type {type(value).__name__}"
