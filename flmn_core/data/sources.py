"""Omniglot and MNIST from their official files, one preprocessing function, and the paper's split.

Where the data lives: `--data-dir` or the FLMN_DATA_DIR environment variable, a folder with
    omniglot/images_background.zip, omniglot/images_evaluation.zip   (or the same folders extracted)
    mnist/t10k-images-idx3-ubyte.gz, mnist/t10k-labels-idx1-ubyte.gz
Preprocessed arrays are cached in FLMN_CACHE_DIR (default: the user's cache folder), so the data folder
may be read-only and the second load takes well under a second.
"""

import gzip
import hashlib
import io
import os
import struct
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from flmn_core.data.normalise import OMNIGLOT_SIZE, downscale, normalise_drawing, preprocess
from flmn_core.files import atomic_open

AUGMENT_SIZE = 42  # Experiment II rotates and shifts images at this size: 1/6 of the pixels of 105
OMNIGLOT_SETS = ("images_background", "images_evaluation")
OMNIGLOT_CHARACTERS = (964, 659)  # characters in each set of the official release
OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/master/python/{name}.zip"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/{name}"

# The paper's split: sort the 1623 character folders by path; the first 1209 train, the last 414 test.
TRAIN_CHARACTERS = 1209
TEST_CHARACTERS = 414
# Validation (model selection) holds out whole alphabets of the first 1209 characters (the 8th, 16th, 24th
# and 32nd of their 39 alphabets, 129 characters), so that it measures what the test measures: characters
# of alphabets never seen in training. Characters of the training alphabets would overstate test accuracy.
VALIDATION_ALPHABETS = ("images_background/Blackfoot_(Canadian_Aboriginal_Syllabics)", "images_background/Gujarati",
                        "images_background/Mkhedruli_(Georgian)", "images_evaluation/Atemayar_Qelisayer")
# The other scheme, "random": the 414 test and 129 validation characters drawn at random (with this seed)
# from all 50 alphabets, so that test characters share their alphabets with training ones. The paper says
# only that its 1,209 / 414 classes are disjoint; its authors' code reads ready-made folders.
SPLIT_SCHEMES = ("alphabets", "random")
RANDOM_SPLIT_SEED = 2017
VALIDATION_CHARACTERS = 129  # as many as the validation alphabets hold
MINI_MNIST_PER_DIGIT = 20  # miniMNIST of the paper's Table 2: 20 images per digit
# Which 200 digits make a miniMNIST moves its figures by several points, so figures are means over many
# subsets, each drawn (by its number) from the "report" half of MNIST's 10,000 test digits; anything chosen for
# MNIST (a pen widening, which checkpoint ships) is chosen on subsets of the other, "select", half. The halves
# are drawn once with MNIST_HALF_SEED.
MNIST_HALVES = ("report", "select")
MNIST_HALF_SEED = 2017
CACHE_VERSION = 1  # bump when preprocessing changes, so old caches are not reused


class DataError(Exception):
    """A data file is missing or unreadable; the message names the file and says what to do."""


def data_dir(path=None):
    """The data folder: the argument, else $FLMN_DATA_DIR, else default_data_dir()."""
    if path is None:
        path = os.environ.get("FLMN_DATA_DIR") or default_data_dir()
    return Path(path).expanduser()


def default_data_dir():
    """~/.local/share/flmn (in $XDG_DATA_HOME): the one data folder a download may create. A folder someone
    named (--data-dir, FLMN_DATA_DIR) must exist: a mistyped one is reported, never made."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "flmn"


def cache_dir(path=None):
    """The cache folder: the argument, else $FLMN_CACHE_DIR, else ~/.cache/flmn."""
    if path is None:
        path = os.environ.get("FLMN_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "flmn"
    return Path(path).expanduser()


# ---------------------------------------------------------------------------------------------------------
# Omniglot


@dataclass
class Omniglot:
    """All 1623 Omniglot characters, in the split order (sorted by path).

    characters: the paths `images_{background,evaluation}/<Alphabet>/<characterNN>`, length 1623.
    images: [1623, 20, 20, 20] float32, character x drawer x 20 x 20, ink 1 (preprocessed).
    """

    characters: list
    images: torch.Tensor


def split_indices(name, characters=None, scheme="alphabets"):
    """Character indices (into the sorted 1623) of "train", "validation" or "test".

    scheme "alphabets", the paper's split: the first 1209 characters train, the last 414 test. Validation is
    carved out of the first 1209 as whole alphabets (VALIDATION_ALPHABETS), which is why "train" and
    "validation" need `characters`, the sorted character paths of `Omniglot.characters`.
    scheme "random": 414 test and 129 validation characters drawn at random from all of them, the rest train.
    -> indices on the CPU, where the images are.
    """
    if name not in ("train", "validation", "test"):
        raise ValueError(f"unknown split {name!r}; expected 'train', 'validation' or 'test'")
    if scheme == "random":
        order = torch.from_numpy(np.random.default_rng(RANDOM_SPLIT_SEED).permutation(sum(OMNIGLOT_CHARACTERS)))
        parts = order.split([TEST_CHARACTERS, VALIDATION_CHARACTERS, len(order) - TEST_CHARACTERS - VALIDATION_CHARACTERS])
        return dict(zip(("test", "validation", "train"), parts))[name].sort().values
    if scheme != "alphabets":
        raise ValueError(f"unknown split scheme {scheme!r}; expected one of {', '.join(SPLIT_SCHEMES)}")
    if name == "test":
        return torch.arange(TRAIN_CHARACTERS, TRAIN_CHARACTERS + TEST_CHARACTERS, device="cpu")
    if characters is None:
        raise ValueError(f"the {name!r} split needs the character paths (Omniglot.characters)")
    is_validation = torch.tensor([str(path).rsplit("/", 1)[0] in VALIDATION_ALPHABETS
                                  for path in characters[:TRAIN_CHARACTERS]], device="cpu")
    return torch.arange(TRAIN_CHARACTERS, device="cpu")[is_validation if name == "validation" else ~is_validation]


def load_omniglot(data_dir_=None, cache=None, raw=False, download=True):
    """Load Omniglot, preprocessed, from the cache or the official files (downloading them if missing
    and online). raw=True also returns the original 105 x 105 images (uint8 {0, 1}, ink 1) as a tensor
    [1623, 20, 105, 105], which Experiment II's augmentation transforms before downscaling."""
    folder = data_dir(data_dir_) / "omniglot"
    sources = [_omniglot_source(folder, name, download) for name in OMNIGLOT_SETS]
    key = _cache_key("omniglot", sources)
    cached = _cache_load(cache, key, ("characters", "images", "raw_bits"))
    if cached is None:
        characters, raw_images = _read_omniglot(sources)
        images = downscale(torch.from_numpy(raw_images).float()).numpy()
        cached = {"characters": np.array(characters), "images": images, "raw_bits": np.packbits(raw_images, axis=-1)}
        _cache_save(cache, key, cached)
    data = Omniglot(list(cached["characters"]), torch.from_numpy(cached["images"]))
    if not raw:
        return data
    raw_images = np.unpackbits(cached["raw_bits"], axis=-1, count=OMNIGLOT_SIZE)
    return data, torch.from_numpy(raw_images)


def augmentation_images(raw):
    """The 105 x 105 originals [..., 105, 105] -> float32 [..., 42, 42] by the area filter, the input that
    Experiment II's augmentation transforms (rotation and shift commute with scaling, so transforming this
    copy equals transforming the original up to interpolation, at a sixth of the pixels)."""
    lead = raw.shape[:-2]
    small = F.interpolate(raw.reshape(-1, 1, OMNIGLOT_SIZE, OMNIGLOT_SIZE).float(), size=(AUGMENT_SIZE, AUGMENT_SIZE), mode="area")
    return small.reshape(*lead, AUGMENT_SIZE, AUGMENT_SIZE)


def _omniglot_source(folder, name, download):
    """The zip or extracted folder for one Omniglot set, downloading the zip when missing."""
    if (folder / name).is_dir():
        return folder / name
    path = folder / f"{name}.zip"
    _fetch_if_missing(path, OMNIGLOT_URL.format(name=name), download)
    return path


def _read_omniglot(sources):
    """Read every PNG of both sets -> (sorted character paths, uint8 [1623, 20, 105, 105], ink 1)."""
    files = {}
    for source, expected in zip(sources, OMNIGLOT_CHARACTERS):
        found = {}
        for member, read in _list_pngs(source):
            parts = member.split("/")
            if len(parts) == 4:
                found.setdefault("/".join(parts[:3]), []).append((parts[3], read))
        if len(found) != expected:
            raise DataError(f"{source}: found {len(found)} Omniglot characters, expected {expected}. "
                            f"Put the official {source.name} there, unmodified.")
        files.update(found)
    characters = sorted(files)
    images = np.zeros((len(characters), 20, OMNIGLOT_SIZE, OMNIGLOT_SIZE), dtype=np.uint8)
    for c, character in enumerate(characters):
        drawings = sorted(files[character])
        if len(drawings) != 20:
            raise DataError(f"{character}: {len(drawings)} drawings, expected 20. The Omniglot files are incomplete.")
        for d, (name, read) in enumerate(drawings):
            try:
                with Image.open(io.BytesIO(read())) as image:
                    images[c, d] = np.asarray(image.convert("L")) < 128  # black ink on white
            except (OSError, UnidentifiedImageError, ValueError) as error:
                raise DataError(f"{character}/{name}: unreadable image ({error}). Replace the Omniglot files.") from error
    return characters, images


def _list_pngs(source):
    """(member path 'images_x/Alphabet/characterNN/file.png', reader) for each PNG of a zip or folder."""
    if source.is_dir():
        root = source.parent
        return [(str(p.relative_to(root)).replace(os.sep, "/"), p.read_bytes) for p in source.rglob("*.png")]
    try:
        archive = zipfile.ZipFile(source)
        names = [n for n in archive.namelist() if n.endswith(".png")]
        return [(n, (lambda n=n: archive.read(n))) for n in names]
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{source}: not a readable zip ({error}). Delete it and put the official file there "
                        f"(or run with internet access to download it).") from error


# ---------------------------------------------------------------------------------------------------------
# MNIST


def _mnist_files(data_dir_, download):
    """The paths of MNIST's test images and labels, downloaded first when missing (and allowed)."""
    folder = data_dir(data_dir_) / "mnist"
    paths = [folder / name for name in MNIST_FILES]
    for path, name in zip(paths, MNIST_FILES):
        _fetch_if_missing(path, MNIST_URL.format(name=name), download)
    return paths


def mnist_half(labels, half):
    """The indices of MNIST's test digits in one of MNIST_HALVES (labels: all 10,000 of them)."""
    if half not in MNIST_HALVES:
        raise ValueError(f"unknown MNIST half {half!r}; expected one of {', '.join(MNIST_HALVES)}")
    order = np.random.default_rng(MNIST_HALF_SEED).permutation(len(labels))
    return np.sort(order[: len(labels) // 2] if half == "report" else order[len(labels) // 2 :])


def mini_mnist_digits(data_dir_=None, download=True, subset=0, half="report"):
    """One miniMNIST as MNIST gives its images: 20 test images per digit, drawn from a half of MNIST's test digits
    (MNIST_HALVES) with the subset's number as the seed -> uint8 array [10, 20, 28, 28], digit x sample x 28 x
    28, light ink on black."""
    images_path, labels_path = _mnist_files(data_dir_, download)
    images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
    pool = mnist_half(labels, half)
    rng = np.random.default_rng(subset)
    chosen = [rng.choice(pool[labels[pool] == d], MINI_MNIST_PER_DIGIT, replace=False) for d in range(10)]
    return np.stack([images[rows] for rows in chosen])


def load_mini_mnist(data_dir_=None, cache=None, download=True, subset=0, half="report", normalised=False):
    """A miniMNIST (the paper's Table 2; see `mini_mnist_digits`) read as the paper does (`preprocess`), or with
    normalised=True as the app reads a drawing (`normalise_drawing`) -> float32 tensor [10, 20, 20, 20], digit x
    sample x 20 x 20."""
    read = normalise_drawing if normalised else preprocess
    key = _cache_key(f"minimnist-{half}-{subset}{'-normalised' * normalised}", _mnist_files(data_dir_, download))
    cached = _cache_load(cache, key, ("images",))
    if cached is None:
        digits = mini_mnist_digits(data_dir_, download, subset, half)
        cached = {"images": np.stack([np.stack([read(image).numpy() for image in row]) for row in digits])}
        _cache_save(cache, key, cached)
    return torch.from_numpy(cached["images"])


def _read_idx(path, dims):
    """An IDX file (gzipped) -> uint8 array with `dims` dimensions."""
    try:
        with gzip.open(path, "rb") as f:
            content = f.read()
        magic = struct.unpack(">I", content[:4])[0]
        if magic != 0x800 + dims:
            raise ValueError(f"magic number {magic:#x}, expected {0x800 + dims:#x}")
        shape = struct.unpack(f">{dims}I", content[4 : 4 + 4 * dims])
        return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    except (OSError, EOFError, ValueError, struct.error) as error:
        raise DataError(f"{path}: not a valid MNIST IDX file ({error}). Replace it with the official file.") from error


# ---------------------------------------------------------------------------------------------------------
# Download and cache


def _missing_message(path, url):
    return (f"{path} is missing. Download {url} and put it there, or point FLMN_DATA_DIR (or --data-dir) at a "
            f"folder with omniglot/ and mnist/ subfolders holding the official files.")


def _fetch_if_missing(path, url, download):
    """Download url to path when path is missing (and download is allowed), else say what to do."""
    if path.exists():
        return
    if not download:
        raise DataError(_missing_message(path, url))
    _download(url, path)


def _download(url, path):
    """Download url to path (<data folder>/<set>/<file>) atomically, with a progress bar; offline, or into
    a named data folder that does not exist (default_data_dir), -> DataError saying what to do."""
    from tqdm import tqdm

    folder = path.parents[1]
    if not folder.is_dir() and folder != default_data_dir():
        raise DataError(f"the data folder {folder} does not exist (given by --data-dir or FLMN_DATA_DIR): give the "
                        "folder that holds omniglot/ and mnist/, or create it for the files to be downloaded into")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {url} -> {path}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=30) as response, atomic_open(path) as out:
            total = int(response.headers.get("Content-Length") or 0)
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=path.name) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as error:
        raise DataError(f"could not download {url} ({error}). " + _missing_message(path, url)) from error


def _cache_key(name, sources):
    """A cache file name that changes when a source file or the preprocessing changes."""
    digest = hashlib.sha256(f"{CACHE_VERSION}".encode())
    for source in sources:
        stat = source.stat()
        digest.update(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{name}-{digest.hexdigest()[:16]}.npz"


def _cache_load(cache, key, fields):
    """The cached arrays, or None when absent or unreadable (then they are rebuilt)."""
    path = cache_dir(cache) / key
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {field: archive[field] for field in fields}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _cache_save(cache, key, arrays):
    """Write the arrays to the cache atomically; a read-only cache folder only costs the next load time."""
    try:
        with atomic_open(cache_dir(cache) / key) as f:
            np.savez(f, **arrays)
    except OSError as error:
        print(f"warning: could not write the cache {cache_dir(cache) / key}: {error}", file=sys.stderr)
