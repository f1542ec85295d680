"""Omniglot's stroke files read and drawn as the Teach page's canvas draws them (flmn_core.data.strokes)."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from flmn_core import preprocess
from flmn_core.data import strokes
from flmn_core.data.strokes import CANVAS_SIDE, DEFAULT_PEN

TWO_STROKES = "START\n10,-20,0\n30,-20,50\nBREAK\n\n50,-60,0\n60,-70,10\n70,-80,20\nSTART\n"


def test_a_stroke_file_gives_its_strokes_in_image_space():
    first, second = strokes.parse_strokes(TWO_STROKES)
    np.testing.assert_array_equal(first, [[10, 20, 0], [30, 20, 50]])  # y down: motor -20 is image row 20
    np.testing.assert_array_equal(second, [[50, 60, 0], [60, 70, 10], [70, 80, 20]])  # blank lines and a last START add nothing


def test_a_line_that_is_not_a_point_is_named():
    with pytest.raises(ValueError, match="line 3 .* neither START, BREAK nor x,y,t"):
        strokes.parse_strokes("START\n1,2,3\n1,2\n")


def test_drawings_are_read_once_from_both_subsets_in_order(tmp_path):
    paths = []
    for name, members in (("strokes_background_small1", ("Greek/character01/0001_01", "Korean/character01/0002_01")),
                          ("strokes_background_small2", ("Greek/character01/0001_01", "Latin/character02/0003_05"))):
        paths.append(tmp_path / f"{name}.zip")
        with zipfile.ZipFile(paths[-1], "w") as archive:
            for member in members:
                archive.writestr(f"{name}/{member}.txt", TWO_STROKES)
            archive.writestr(f"__MACOSX/{name}/._x.txt", b"\x00\x05")  # macOS litter in the official zips
    drawings = strokes.read_drawings(paths)
    assert list(drawings) == ["Greek/character01/0001_01", "Korean/character01/0002_01", "Latin/character02/0003_05"]
    assert strokes.scan_member("Latin/character02/0003_05") == "images_background/Latin/character02/0003_05.png"


def test_the_canvas_rendering_is_the_canvas_result():
    horizontal = [np.array([[21, 52.5, 0], [84, 52.5, 10]], np.float32)]  # 1/5 to 4/5 of the frame, at mid height
    rgba = strokes.render_canvas(horizontal)
    assert rgba.shape == (CANVAS_SIDE, CANVAS_SIDE, 4) and rgba.dtype == np.uint8 and (rgba[..., 3] == 255).all()
    dark = rgba[..., 0] < 128
    rows, cols = np.nonzero(dark)
    assert abs(dark.sum(axis=0).max() - DEFAULT_PEN) <= 1  # the pen's width, in canvas pixels
    assert rows.min() >= 140 - DEFAULT_PEN and rows.max() <= 140 + DEFAULT_PEN
    assert abs(cols.min() - (56 - DEFAULT_PEN / 2)) <= 1 and abs(cols.max() - (224 + DEFAULT_PEN / 2)) <= 1  # round caps
    white_on_black = strokes.render_canvas(horizontal, ink="#ffffff", paper="#000000")
    np.testing.assert_array_equal(white_on_black[..., :3], 255 - rgba[..., :3])


def test_a_tap_is_a_disc_of_the_pen():
    rgba = strokes.render_canvas([np.array([[52.5, 52.5, 0]], np.float32)], pen=20)
    dark = rgba[..., 0] < 128
    assert abs(dark.sum() - np.pi * 10 ** 2) < 0.1 * np.pi * 10 ** 2


@pytest.fixture(scope="module")
def stroke_data(data_dir):
    zips = strokes.stroke_zips(data_dir)
    if not zips:
        pytest.skip(f"no omniglot-strokes/strokes_*.zip under {data_dir}")
    return strokes.read_drawings(zips)


def test_every_drawing_has_its_scan_and_is_drawn_where_the_scan_is(stroke_data, data_dir):
    assert len(stroke_data) == 242 * 20  # the two official subsets: 10 alphabets, Greek and Latin in both
    with zipfile.ZipFile(data_dir / "omniglot" / "images_background.zip") as archive:
        present = set(archive.namelist())
        assert all(strokes.scan_member(key) in present for key in stroke_data)
        overlaps = []
        for key in list(stroke_data)[::97]:  # 50 drawings across the alphabets
            scan = preprocess(Image.open(io.BytesIO(archive.read(strokes.scan_member(key))))).numpy() > 0.3
            drawn = preprocess(strokes.render_canvas(stroke_data[key])).numpy() > 0.3
            overlaps.append((scan & drawn).sum() / (scan | drawn).sum())
    assert np.median(overlaps) > 0.6, overlaps  # the same drawing, rendered by another pen
