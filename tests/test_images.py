"""Untrusted pictures: nasty files, generated bad inputs and drawing polarity (flmn_core.interactive.uploads).

Every file is built here in memory; nothing comes from the data folder.
"""

import io
import re
import struct
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw, ImageFile

from flmn_core import IMAGE_SIZE
from flmn_core.interactive.uploads import (
    MAX_SIDE,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MB,
    MIN_SIDE,
    WORK_SIDE,
    ImageInputError,
    image_from_canvas,
    prepare,
    read_upload,
)

# The test picture: 60 x 60 with a vertical bar.
SIDE = 60
BAR = (slice(6, 54), slice(12, 24))


def bar_array(ink, paper, transpose=False):
    """[60, 60] or [60, 60, channels] array of `paper` with the bar in `ink` (scalars or tuples)."""
    ink, paper = np.asarray(ink), np.asarray(paper)
    array = np.broadcast_to(paper, (SIDE, SIDE) + paper.shape).copy()
    array[BAR[::-1] if transpose else BAR] = ink
    return array


def encode(image, fmt, **options):
    """A PIL image -> the bytes of a file in `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bomb(width, height):
    """A valid 1-bit PNG of width x height black pixels: a few kilobytes that decode to width * height bytes."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 250) for _ in range(height // 250))
    idat += compressor.compress(row * (height % 250)) + compressor.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_bar(tensor):
    """The prepared tensor is the plain picture of the bar, prepared: `prepare` also moves and resizes a
    drawing into Omniglot's ranges, so the reference goes through it too."""
    expected = prepare(Image.fromarray(bar_array(0, 255).astype(np.uint8)))
    assert tensor.shape == (IMAGE_SIZE, IMAGE_SIZE) and tensor.dtype == torch.float32
    assert expected.sum() > 10  # the reference itself holds the bar
    difference = (tensor - expected).abs()
    assert difference.mean() < 0.02 and difference.max() < 0.3, (tensor, expected)


# ---------------------------------------------------------------------------------------------------------
# Valid but odd files: each gives the bar.


def cmyk_jpeg():
    image = Image.new("CMYK", (SIDE, SIDE), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((12, 6, 23, 53), fill=(0, 0, 0, 255))
    return encode(image, "JPEG", quality=95)


def palette_png_with_transparency():
    """Both palette entries are black: only the transparency tells the ink (index 1) from the paper."""
    image = Image.fromarray(bar_array(1, 0).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 0, 0, 0])
    return encode(image, "PNG", transparency=0)


def la_png():
    """Black everywhere, the ink opaque and the paper transparent."""
    return encode(Image.fromarray(bar_array((0, 255), (0, 0)).astype(np.uint8), mode="LA"), "PNG")


def animated(fmt):
    """Two frames: the bar first, then a horizontal bar that must not be what the model sees."""
    first = Image.fromarray(bar_array(0, 255).astype(np.uint8)).convert("P")
    second = Image.fromarray(bar_array(0, 255, transpose=True).astype(np.uint8)).convert("P")
    return encode(first, fmt, save_all=True, append_images=[second], duration=100, loop=0)


def rotated_jpeg():
    """A photo whose EXIF says "rotate 90 degrees clockwise to display": stored as a horizontal bar on the
    right, shown (and prepared) as the vertical bar on the left."""
    stored = Image.fromarray(bar_array(0, 255).astype(np.uint8)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise
    return encode(stored, "JPEG", quality=95, exif=exif)


VALID_FILES = {
    "cmyk-jpeg": cmyk_jpeg,
    "16-bit-png": lambda: encode(Image.fromarray(bar_array(0, 65535).astype(np.uint16)), "PNG"),
    "16-bit-png-white-on-black": lambda: encode(Image.fromarray(bar_array(65535, 0).astype(np.uint16)), "PNG"),
    "palette-png-transparency": palette_png_with_transparency,
    "la-png": la_png,
    "animated-gif": lambda: animated("GIF"),
    "animated-png": lambda: animated("PNG"),
    "1-bit-png": lambda: encode(Image.fromarray(bar_array(False, True)), "PNG"),
    "gray-jpeg": lambda: encode(Image.fromarray(bar_array(0, 255).astype(np.uint8)), "JPEG", quality=95),
    "rgb-bmp": lambda: encode(Image.fromarray(bar_array((0, 0, 90), (255, 255, 255)).astype(np.uint8)), "BMP"),
    "rgba-webp": lambda: encode(Image.fromarray(bar_array((0, 0, 0, 255), (255, 255, 255, 0)).astype(np.uint8)),
                                "WEBP", lossless=True),
    "exif-rotated-jpeg": rotated_jpeg,
}


@pytest.mark.parametrize("name", VALID_FILES)
def test_valid_odd_files_give_the_drawing(name):
    image = read_upload(VALID_FILES[name](), f"{name}.bin")
    assert image.mode in ("L", "RGB", "RGBA") and image.size == (SIDE, SIDE)
    assert_bar(prepare(image))


@pytest.mark.parametrize("array", [bar_array(0.0, 1.0).astype(np.float32), bar_array(0, 70000).astype(np.int32)],
                         ids=["F", "I"])
def test_float_and_32_bit_pil_images_give_the_drawing(array):
    assert_bar(prepare(Image.fromarray(array)))


def test_large_upload_is_shrunk_but_prepares_the_same():
    big = Image.fromarray(bar_array(0, 255).astype(np.uint8)).resize((3000, 3000), Image.Resampling.NEAREST)
    image = read_upload(encode(big, "PNG"), "big.png")
    assert max(image.size) <= WORK_SIDE
    assert_bar(prepare(image))


# ---------------------------------------------------------------------------------------------------------
# Nasty files: each refused with a message that says what is wrong.


def truncated(data):
    return data[: len(data) // 2]


def flipped(data, position):
    """data with the bits of one byte inverted (inside a PNG's pixel data: its checksum no longer matches)."""
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's default, read before any test runs
NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
       b'<path d="M8 8L56 56"/></svg>')

NASTY_FILES = [
    ("random-bytes", lambda: np.random.default_rng(1).bytes(5000), "not an image this app can read"),
    ("truncated-png", lambda: truncated(encode(NOISE, "PNG")), "damaged or incomplete"),
    ("truncated-jpeg", lambda: truncated(encode(NOISE, "JPEG")), "damaged or incomplete"),
    ("png-without-end", lambda: encode(NOISE, "PNG")[:-5], "damaged or incomplete"),
    ("png-bad-checksum", lambda: flipped(encode(NOISE, "PNG"), 5000), "damaged or incomplete"),
    ("decompression-bomb", lambda: png_bomb(30000, 30000), "decompression bomb"),
    ("1x1", lambda: encode(Image.new("L", (1, 1)), "PNG"), f"is 1 x 1 pixels; it must be at least {MIN_SIDE} x"),
    ("thin", lambda: encode(Image.new("L", (300, 4)), "PNG"), "is 300 x 4 pixels"),
    ("10000x10000", lambda: png_bomb(10000, 10000), f"is 10000 x 10000 pixels; the limit is {MAX_SIDE} x {MAX_SIDE}"),
    ("5000x20", lambda: png_bomb(5000, 20), f"is 5000 x 20 pixels; the limit is {MAX_SIDE} x {MAX_SIDE}"),
    ("4096x8", lambda: encode(Image.new("L", (4096, 8)), "PNG"), "is 4096 x 8 pixels: too long and thin"),
    ("svg", lambda: SVG, "it looks like text"),
    ("text-renamed", lambda: "Notes about my drawing: a circle, then a line. é\n".encode() * 30, "it looks like text"),
    ("tiff", lambda: encode(NOISE, "TIFF"), "upload a PNG, JPEG, GIF, BMP or WebP"),
    ("zero-bytes", lambda: b"", "is empty (0 bytes)"),
    ("over-the-byte-limit", lambda: encode(NOISE, "PNG") + bytes(MAX_UPLOAD_BYTES), f"the limit is {MAX_UPLOAD_MB} MB"),
]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(MIN_SIDE, MAX_SIDE), st.integers(MIN_SIDE, MAX_SIDE))
def test_a_refused_size_is_the_size_uploaded(width, height):
    """Any picture within the side limits is prepared, or refused naming the size the person uploaded
    (never the size the app brought it down to)."""
    picture = Image.new("L", (width, height), 255)
    ImageDraw.Draw(picture).line([(0, 0), (width - 1, height - 1)], fill=0, width=max(1, min(width, height) // 8))
    try:
        prepare(read_upload(encode(picture, "PNG"), "drawing.png"))
    except ImageInputError as error:
        sizes = re.findall(r"(\d+) x (\d+) pixels", str(error))
        assert all(size == (str(width), str(height)) for size in sizes), str(error)


# Pillow warns about the 10000 x 10000 header (100 M pixels) before our own limit refuses it.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("make, expected", [case[1:] for case in NASTY_FILES], ids=[case[0] for case in NASTY_FILES])
def test_nasty_files_are_refused_with_a_clear_message(make, expected):
    with pytest.raises(ImageInputError) as error:
        read_upload(make(), "drawing.png")
    assert expected in str(error.value)
    assert str(error.value).startswith("drawing.png ")
    # Refusing never relaxes Pillow's own guards for the rest of the process (other sessions share it).
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_PIXELS and not ImageFile.LOAD_TRUNCATED_IMAGES


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_bomb_warning_raised_as_an_error_is_still_a_clear_message():
    with pytest.raises(ImageInputError, match="decompression bomb"):
        read_upload(png_bomb(10000, 10000), "drawing.png")


def test_a_file_exactly_at_the_byte_limit_is_accepted():
    data = encode(Image.fromarray(bar_array(0, 255).astype(np.uint8)), "PNG")
    assert_bar(prepare(read_upload(data + bytes(MAX_UPLOAD_BYTES - len(data)), "padded.png")))


def test_upload_limit_matches_the_streamlit_config():
    config = tomllib.loads((Path(__file__).parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


# ---------------------------------------------------------------------------------------------------------
# Empty drawings and the canvas.


def canvas(ink, paper, points=((60, 60), (140, 220), (220, 80)), width=18):
    """A 280 x 280 RGBA canvas result with one stroke through `points`."""
    image = Image.new("RGBA", (280, 280), paper)
    ImageDraw.Draw(image).line(points, fill=ink, width=width, joint="curve")
    return np.asarray(image)


@pytest.mark.parametrize("rgba", [None, np.full((280, 280, 4), 255, np.uint8)], ids=["none", "untouched"])
def test_an_empty_canvas_is_refused_as_empty(rgba):
    with pytest.raises(ImageInputError, match="empty"):
        prepare(image_from_canvas(rgba))


def test_a_blank_upload_is_refused_as_empty():
    image = read_upload(encode(Image.new("RGB", (64, 64), "white"), "PNG"), "white.png")
    with pytest.raises(ImageInputError, match="empty"):
        prepare(image)


@pytest.mark.parametrize("rgba", [np.zeros((280, 280, 3), np.uint8), np.zeros((280, 280, 4), np.float32),
                                  np.zeros((280, 4), np.uint8), [[0, 0, 0, 255]], "image"])
def test_a_malformed_canvas_result_is_refused(rgba):
    with pytest.raises(ImageInputError, match="expected an H x W x 4 array of uint8"):
        image_from_canvas(rgba)


def test_canvas_result_is_copied():
    rgba = np.array(canvas((0, 0, 0, 255), (255, 255, 255, 255)))  # writable, like the component's result
    kept = image_from_canvas(rgba)
    rgba[:] = 0
    assert kept.max() == 255


def test_black_on_white_white_on_black_and_transparent_drawings_prepare_the_same():
    black_on_white = prepare(image_from_canvas(canvas((0, 0, 0, 255), (255, 255, 255, 255))))
    white_on_black = prepare(image_from_canvas(canvas((255, 255, 255, 255), (0, 0, 0, 255))))
    red_on_transparent = prepare(image_from_canvas(canvas((200, 0, 0, 255), (0, 0, 0, 0))))
    assert black_on_white.sum() > 10  # the stroke is there
    torch.testing.assert_close(white_on_black, black_on_white, atol=1e-5, rtol=0)
    torch.testing.assert_close(red_on_transparent, black_on_white, atol=1e-5, rtol=0)


def test_an_uploaded_drawing_prepares_like_the_drawing_itself():
    rgba = canvas((0, 0, 0, 255), (255, 255, 255, 255))
    uploaded = read_upload(encode(Image.fromarray(rgba), "PNG"), "drawing.png")
    torch.testing.assert_close(prepare(uploaded), prepare(image_from_canvas(rgba)), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# Generated bad inputs: only ever ImageInputError (or a valid result), never another exception. No deadline:
# on a machine shared with training runs an example's time says nothing (the bomb tests bound the work).

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def upload_outcome(data):
    """read_upload then prepare; returns the tensor, or None when refused with ImageInputError."""
    try:
        image = read_upload(data, "fuzz.png")
    except ImageInputError:
        return None
    assert image.mode in ("L", "RGB", "RGBA") and max(image.size) <= WORK_SIDE and min(image.size) >= 1
    return prepare_outcome(image)


def prepare_outcome(image):
    """prepare; returns the tensor (checked), or None when refused with ImageInputError."""
    try:
        tensor = prepare(image)
    except ImageInputError:
        return None
    assert tensor.shape == (IMAGE_SIZE, IMAGE_SIZE) and torch.isfinite(tensor).all()
    assert tensor.min() >= 0 and tensor.max() <= 1
    return tensor


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0", b"BM", b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"<svg"]


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=3000))
def test_random_bytes_are_refused_cleanly(magic, tail):
    upload_outcome(magic + tail)


SMALL = Image.fromarray(bar_array(0, 255)[::3, ::3].astype(np.uint8))  # 20 x 20
VALID_BASES = [encode(SMALL, "PNG"), encode(SMALL.convert("RGBA"), "PNG"), encode(SMALL, "JPEG"),
               encode(SMALL, "GIF"), encode(SMALL, "BMP"), encode(SMALL, "WEBP"), animated("GIF"), animated("PNG")]


@FUZZ
@given(st.sampled_from(VALID_BASES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
       st.none() | st.integers(0, 10**6))
def test_corrupted_valid_files_are_refused_cleanly(base, flips, cut):
    data = bytearray(base)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % len(data)]
    upload_outcome(bytes(data))


DTYPES = st.sampled_from([np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64,
                          np.bool_, np.complex64])
ANY_ARRAY = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12))
CANVAS_LIKE = hnp.arrays(np.uint8, st.tuples(st.integers(0, 40), st.integers(0, 40), st.just(4)))
NOT_ARRAYS = st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(0, 255), max_size=8)


@FUZZ
@given(ANY_ARRAY | CANVAS_LIKE | NOT_ARRAYS)
def test_any_canvas_result_is_refused_cleanly_or_prepared(rgba):
    try:
        drawing = image_from_canvas(rgba)
    except ImageInputError:
        return
    assert drawing.shape == rgba.shape and drawing.dtype == np.uint8 and min(drawing.shape[:2]) >= MIN_SIDE
    prepare_outcome(drawing)


@settings(FUZZ, max_examples=100)
@given(ANY_ARRAY | hnp.arrays(DTYPES, st.tuples(st.integers(6, 30), st.integers(6, 30)) | st.tuples(
    st.integers(6, 30), st.integers(6, 30), st.sampled_from([1, 3, 4]))))
def test_any_array_is_refused_cleanly_or_prepared(array):
    prepare_outcome(array)
