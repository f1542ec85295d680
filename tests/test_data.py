"""Data: the one preprocessing function, the paper's split, miniMNIST, the cache, and clear errors for bad files.

Bad data folders are built in tmp_path (copies or fresh files): nothing is written into the shared data.
"""

import gzip
import io
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import flmn_core
from flmn_core import DataError
from flmn_core.data import sources as data


def character_ink(height=105, width=105):
    """A made-up character as ink [H, W] float64 in {0, 1}: a bar, a foot and a diagonal (no symmetry)."""
    ink = np.zeros((height, width))
    ink[15:85, 30:38] = 1.0
    ink[75:83, 30:80] = 1.0
    for i in range(20, 60):
        ink[i, i + 12 : i + 18] = 1.0
    return ink


INK = character_ink()
EXPECTED = flmn_core.preprocess(INK.astype(np.float32))  # ink 1 on background 0 needs no conversion


def as_rgb(gray_uint8):
    return np.repeat(gray_uint8[..., None], 3, axis=2)


def assert_is_preprocessed(tensor):
    assert tensor.shape == (20, 20)
    assert tensor.dtype == torch.float32
    assert tensor.min() >= 0 and tensor.max() <= 1


# ---------------------------------------------------------------------------------------------------------
# preprocess


def test_preprocess_is_the_area_average():
    """A 100 x 100 ink image becomes the 20 x 20 means of its 5 x 5 blocks (the area filter)."""
    ink = character_ink(100, 100)
    expected = np.zeros((20, 20))
    for i in range(20):
        for j in range(20):
            expected[i, j] = ink[5 * i : 5 * i + 5, 5 * j : 5 * j + 5].mean()
    got = flmn_core.preprocess(ink.astype(np.float32))
    assert_is_preprocessed(got)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    assert EXPECTED.max() == 1.0 and EXPECTED.sum() > 20  # the reference below is a real character


BLACK_ON_WHITE = ((1 - INK) * 255).astype(np.uint8)  # Omniglot, paper
WHITE_ON_BLACK = (INK * 255).astype(np.uint8)  # MNIST, a black canvas
INPUTS = {
    "uint8 black on white": lambda: BLACK_ON_WHITE,
    "uint8 white on black": lambda: WHITE_ON_BLACK,
    "uint16 black on white": lambda: ((1 - INK) * 65535).astype(np.uint16),
    "uint16 white on black": lambda: (INK * 65535).astype(np.uint16),
    "float64 black on white": lambda: 1.0 - INK,
    "float32 white on black": lambda: INK.astype(np.float32),
    "bool ink true": lambda: INK > 0.5,
    "bool ink false": lambda: INK < 0.5,
    "RGB black on white": lambda: as_rgb(BLACK_ON_WHITE),
    "RGB red on white": lambda: np.stack([np.full_like(BLACK_ON_WHITE, 255), BLACK_ON_WHITE, BLACK_ON_WHITE], 2),
    "RGB [H, W, 1]": lambda: BLACK_ON_WHITE[..., None],
    "RGBA opaque": lambda: np.dstack([as_rgb(BLACK_ON_WHITE), np.full_like(BLACK_ON_WHITE, 255)]),
    # A canvas: strokes opaque, background transparent; the colour of transparent pixels means nothing.
    "RGBA transparent, black strokes": lambda: np.dstack([np.zeros_like(as_rgb(WHITE_ON_BLACK)), WHITE_ON_BLACK]),
    "RGBA transparent, white": lambda: np.dstack([np.full_like(as_rgb(BLACK_ON_WHITE), 255), WHITE_ON_BLACK]),
    "low contrast gray on gray": lambda: (200 - INK * 60).astype(np.uint8),
    "PIL 1": lambda: Image.fromarray(INK < 0.5),
    "PIL L": lambda: Image.fromarray(BLACK_ON_WHITE),
    "PIL RGB": lambda: Image.fromarray(as_rgb(BLACK_ON_WHITE)),
    "PIL RGBA transparent": lambda: Image.fromarray(np.dstack([np.zeros_like(as_rgb(WHITE_ON_BLACK)), WHITE_ON_BLACK])),
    "PIL P": lambda: Image.fromarray(as_rgb(WHITE_ON_BLACK)).convert("P"),
    "PIL I;16": lambda: Image.fromarray(((1 - INK) * 65535).astype(np.uint16)),
}


@pytest.mark.parametrize("kind", INPUTS)
def test_every_input_form_gives_the_same_tensor(kind):
    """Whatever the type, colour, bit depth, transparency or polarity: ink 1, background 0, the same [20, 20]."""
    image = INPUTS[kind]()
    if kind.startswith("PIL "):
        assert image.mode == kind.split()[1]
    got = flmn_core.preprocess(image)
    assert_is_preprocessed(got)
    torch.testing.assert_close(got, EXPECTED, atol=1e-5, rtol=0)


def test_preprocess_matches_the_omniglot_pipeline(omniglot, data_dir):
    """A PNG straight from the official zip, through preprocess, is the image load_omniglot stores for it."""
    index = int(flmn_core.split_indices("test")[0])
    character = omniglot.characters[index]
    with zipfile.ZipFile(data_dir / "omniglot" / "images_evaluation.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.startswith(character + "/") and n.endswith(".png"))
        image = Image.open(io.BytesIO(archive.read(names[3])))
    torch.testing.assert_close(flmn_core.preprocess(image), omniglot.images[index, 3], atol=1e-6, rtol=0)


def test_non_square_images_are_padded_to_a_centred_square():
    """A 60 x 100 image keeps its proportions: it is the 100 x 100 image with background above and below."""
    ink = character_ink(100, 100)
    ink[:20] = ink[80:] = 0.0
    wide = ink[20:80]
    got = flmn_core.preprocess(((1 - wide) * 255).astype(np.uint8))
    assert_is_preprocessed(got)
    torch.testing.assert_close(got, flmn_core.preprocess(ink.astype(np.float32)), atol=1e-6, rtol=0)
    tall = flmn_core.preprocess(np.ascontiguousarray(wide.T).astype(np.float32))
    torch.testing.assert_close(tall, got.T, atol=1e-6, rtol=0)


@pytest.mark.parametrize("blank", [
    np.full((105, 105), 255, np.uint8), np.zeros((28, 28), np.uint8), np.full((50, 40), 0.5),
    np.zeros((64, 64, 4), np.uint8), Image.new("L", (30, 30), 255), Image.new("RGBA", (30, 30), (255, 0, 0, 0)),
], ids=["white", "black", "gray float", "transparent RGBA", "PIL white", "PIL transparent"])
def test_blank_images_give_zeros(blank):
    got = flmn_core.preprocess(blank)
    assert_is_preprocessed(got)
    assert torch.equal(got, torch.zeros(20, 20))


@pytest.mark.parametrize("shape", [(105,), (10, 10, 2), (10, 10, 5), (2, 10, 10, 3), (0, 10), (10, 0, 3)])
def test_bad_shapes_are_refused_with_a_message(shape):
    with pytest.raises(ValueError, match=r"expected an image of shape \[H, W\], \[H, W, 3\] or \[H, W, 4\], got"):
        flmn_core.preprocess(np.zeros(shape, np.uint8))


# ---------------------------------------------------------------------------------------------------------
# The paper's split, on the real data


def test_split_counts_disjoint_and_complete(omniglot):
    train, validation, test = (set(flmn_core.split_indices(name, omniglot.characters).tolist())
                               for name in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (1080, 129, 414)
    assert not train & validation and not train & test and not validation & test
    assert train | validation == set(range(1209))  # validation is carved out of the first 1209 ...
    assert test == set(range(1209, 1623))  # ... and the last 414 are test
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        flmn_core.split_indices("dev")
    with pytest.raises(ValueError, match="needs the character paths"):
        flmn_core.split_indices("validation")


def test_validation_holds_out_whole_alphabets(omniglot):
    """No alphabet has characters both in training and in validation (or test): validation, like the test,
    measures alphabets never seen in training."""
    alphabet = lambda i: str(omniglot.characters[i]).rsplit("/", 1)[0]  # noqa: E731
    train, validation, test = (flmn_core.split_indices(name, omniglot.characters).tolist()
                               for name in ("train", "validation", "test"))
    assert {alphabet(i) for i in validation} == set(flmn_core.data.sources.VALIDATION_ALPHABETS)
    assert not {alphabet(i) for i in train} & {alphabet(i) for i in validation}
    assert not {alphabet(i) for i in validation} & {alphabet(i) for i in test}


def test_split_follows_the_rule_on_the_real_files(omniglot, data_dir):
    """The characters are all 1623 character folders of the two zips, sorted by path; the test characters run
    from images_evaluation/Kannada/character06 to images_evaluation/ULOG/character26."""
    folders = set()
    for name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(data_dir / "omniglot" / f"{name}.zip") as archive:
            folders |= {"/".join(n.split("/")[:3]) for n in archive.namelist() if n.endswith(".png")}
    assert len(folders) == 1623
    assert [str(c) for c in omniglot.characters] == sorted(folders)
    test = flmn_core.split_indices("test")
    assert omniglot.characters[test[0]] == "images_evaluation/Kannada/character06"
    assert omniglot.characters[test[-1]] == "images_evaluation/ULOG/character26"
    assert omniglot.characters[test[0] - 1] < "images_evaluation/Kannada/character06"
    assert omniglot.images.shape == (1623, 20, 20, 20) and omniglot.images.dtype == torch.float32
    assert omniglot.images.min() == 0 and omniglot.images.amax((-2, -1)).min() > 0  # no blank drawing


def test_second_load_comes_from_the_cache(omniglot, data_dir, flmn_cache_dir, monkeypatch):
    """The first load (the session fixture) wrote the cache; the second reads it, not the zips (checked by
    making them unreadable, not by timing), and gives the same data."""
    assert list(data.cache_dir().glob("omniglot-*.npz"))
    monkeypatch.setattr(data, "_read_omniglot", lambda sources: pytest.fail("the second load read the zips"))
    again = flmn_core.load_omniglot(data_dir, download=False)
    assert torch.equal(again.images, omniglot.images) and list(again.characters) == list(omniglot.characters)


# ---------------------------------------------------------------------------------------------------------
# miniMNIST


def read_idx(path):
    """A gzipped IDX file -> uint8 array (the header gives the number of dimensions and the shape)."""
    content = gzip.decompress(path.read_bytes())
    dims = content[3]
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(content, np.uint8, offset=4 + 4 * dims).reshape(shape)


def test_mini_mnist_is_20_preprocessed_test_images_per_digit(data_dir, tmp_path):
    mini = flmn_core.load_mini_mnist(data_dir, download=False)
    assert mini.shape == (10, 20, 20, 20) and mini.dtype == torch.float32
    images, labels = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"), read_idx(
        data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    digit_of = {flmn_core.preprocess(image).numpy().tobytes(): int(label) for image, label in zip(images, labels)}
    for digit in range(10):
        found = [digit_of.get(image.numpy().tobytes()) for image in mini[digit]]
        assert found == [digit] * 20, f"digit {digit}"
        assert len({image.numpy().tobytes() for image in mini[digit]}) == 20  # 20 different images
    # Drawn once with a fixed seed: two fresh caches rebuild exactly the same set.
    rebuilt = flmn_core.load_mini_mnist(data_dir, cache=tmp_path / "fresh", download=False)
    assert torch.equal(rebuilt, mini)
    assert list((tmp_path / "fresh").glob("minimnist-*.npz"))
    # The digits as MNIST gives them (for normalised reading) are the same images, before preprocessing.
    digits = flmn_core.data.sources.mini_mnist_digits(data_dir, download=False)
    assert digits.shape == (10, 20, 28, 28) and digits.dtype == np.uint8
    assert all(torch.equal(flmn_core.preprocess(digits[d, i]), mini[d, i]) for d in range(10) for i in range(20))


# ---------------------------------------------------------------------------------------------------------
# Clear errors for missing or bad files


def omniglot_copy(tmp_path, data_dir, background):
    """tmp_path/data/omniglot with a copy of the real evaluation zip and a background zip of the given bytes."""
    folder = tmp_path / "data" / "omniglot"
    folder.mkdir(parents=True)
    shutil.copyfile(data_dir / "omniglot" / "images_evaluation.zip", folder / "images_evaluation.zip")
    (folder / "images_background.zip").write_bytes(background)
    return folder


def load_error(folder):
    """The DataError of load_omniglot on a data folder (never downloading) -> its message."""
    with pytest.raises(DataError) as error:
        flmn_core.load_omniglot(folder, download=False)
    return str(error.value)


def test_missing_data_folder(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "omniglot" / "images_background.zip") in message
    assert "FLMN_DATA_DIR" in message and "https://" in message
    assert not (tmp_path / "nowhere").exists()  # download=False creates nothing


def test_empty_data_folder(tmp_path):
    (tmp_path / "empty" / "omniglot").mkdir(parents=True)
    message = load_error(tmp_path / "empty")
    assert str(tmp_path / "empty" / "omniglot" / "images_background.zip") in message


def test_empty_extracted_folders(tmp_path):
    for name in ("images_background", "images_evaluation"):
        (tmp_path / "omniglot" / name).mkdir(parents=True)
    message = load_error(tmp_path)
    assert str(tmp_path / "omniglot") in message and "found 0 Omniglot characters" in message


def test_truncated_zip(tmp_path, data_dir):
    whole = (data_dir / "omniglot" / "images_background.zip").read_bytes()
    folder = omniglot_copy(tmp_path, data_dir, whole[: len(whole) // 2])
    message = load_error(folder.parent)
    assert str(folder / "images_background.zip") in message and "not a readable zip" in message


def test_zip_that_is_not_omniglot(tmp_path, data_dir):
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("README.txt", "not omniglot")
        archive.writestr("digits/7/0001.png", b"\x89PNG not really")
    folder = omniglot_copy(tmp_path, data_dir, foreign.getvalue())
    message = load_error(folder.parent)
    assert "expected 1623" in message or "expected 964" in message
    assert str(folder / "images_background.zip") in message


def test_missing_and_corrupt_mnist(tmp_path, data_dir):
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is missing"):
        flmn_core.load_mini_mnist(tmp_path, download=False)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    shutil.copyfile(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as error:
        flmn_core.load_mini_mnist(tmp_path, download=False)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz") in str(error.value)


def test_the_random_split_draws_disjoint_characters_from_all_alphabets(omniglot):
    parts = {name: flmn_core.split_indices(name, omniglot.characters, scheme="random").tolist()
             for name in ("train", "validation", "test")}
    assert [len(parts[name]) for name in ("train", "validation", "test")] == [1080, 129, 414]
    assert set().union(*map(set, parts.values())) == set(range(1623))
    alphabet = lambda i: omniglot.characters[i].rsplit("/", 1)[0]  # noqa: E731
    assert len({alphabet(i) for i in parts["test"]}) == 50  # test characters from every alphabet ...
    assert {alphabet(i) for i in parts["test"]} <= {alphabet(i) for i in parts["train"]}  # ... that training sees
    again = flmn_core.split_indices("test", omniglot.characters, scheme="random").tolist()
    assert again == parts["test"] != flmn_core.split_indices("test").tolist()
    with pytest.raises(ValueError, match="split scheme"):
        flmn_core.split_indices("test", scheme="shuffled")


def test_mnist_halves_split_the_test_digits_and_subsets_draw_from_one_half(data_dir):
    labels = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    report, select = (flmn_core.data.sources.mnist_half(labels, half) for half in ("report", "select"))
    assert len(report) == len(select) == 5000 and not set(report) & set(select)
    images = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    index_of = {image.tobytes(): i for i, image in enumerate(images)}
    seen = set()
    for subset in range(3):
        digits = flmn_core.data.sources.mini_mnist_digits(data_dir, download=False, subset=subset, half="select")
        rows = [index_of[image.tobytes()] for image in digits.reshape(-1, 28, 28)]
        assert set(rows) <= set(select) and len(set(rows)) == 200  # 20 different digits of each class
        assert [int(labels[r]) for r in rows] == [d for d in range(10) for _ in range(20)]
        seen.add(tuple(rows))
    assert len(seen) == 3  # each subset its own draw


@pytest.mark.parametrize("radius", [1, 2, 3, 6, 11])
def test_the_disc_sums_of_normalise_are_a_convolution_with_the_disc(radius):
    """normalise thickens and thins strokes with sums over a disc; they are computed run by run of the disc's
    rows (fast on a CPU), and must equal the plain convolution with the disc, exactly."""
    from flmn_core.data import normalise

    binary = (torch.rand(37, 53, generator=torch.Generator().manual_seed(radius)) > 0.6).float()
    disc = normalise._disc(radius)
    expected = torch.nn.functional.conv2d(binary[None, None], disc[None, None], padding=radius)[0, 0]
    assert torch.equal(normalise._disc_sum(binary, radius), expected)
