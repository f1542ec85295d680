"""The episode file: one taught episode as an .npz archive of plain arrays (no pickle), and its checks.

    format         ()         int, FILE_FORMAT
    classes        ()         int C, 2..MAX_CLASSES
    images         [T, 20, 20] float in 0..1 (ink 1), T <= MAX_STEPS
    labels         [T]        int in 0..C-1
    class_names    [C]        str, at most MAX_NAME_LENGTH characters each (may be empty)
    models         [M]        str, the models that ran the episode when it was saved, M <= MAX_MODELS
    probabilities  [M, T, C]  float, each model's predictions then

A file comes from anyone, so nothing it declares is trusted: the archive is opened with zipfile (never
np.load), each array's header (its declared type and shape) is checked against the limits above before
its data is read, so the reader never allocates more than MAX_MEMBER_BYTES for one array, and every
problem, from a flipped byte to an absurd shape, raises EpisodeError in the person's terms.
"""

import io
import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flmn_core.files import atomic_open
from flmn_core.model.configs import IMAGE_SIZE

FILE_FORMAT = 1  # version of the episode file; bump when its arrays change
# Longest episode a session holds, taught or loaded from a file. Each step keeps both models' state and trace
# for the pages to draw: about 62 KB of server memory per step with the default checkpoints (60.5 MB for 1000
# steps; up to 70 KB with mann4-santoro), so one session's episode stays under 15 MB. 200 holds 15 labels
# shown 13 times each, or the papers' 5 x 10 four times over.
MAX_STEPS = 200
MAX_CLASSES = 100  # most labels an episode may have
MAX_MODELS = 16  # most models whose predictions a file may record
MAX_NAME_LENGTH = 40  # characters in a class or model name
MAX_MEMBER_BYTES = 16 << 20  # one array's data; the largest real one (MAX_STEPS images) takes 320 KB
MAX_FILE_BYTES = 64 << 20  # a whole file; the app refuses larger uploads sooner (images.MAX_UPLOAD_MB)
FILE_ARRAYS = ("format", "classes", "images", "labels", "class_names", "models", "probabilities")
UNREADABLE = "not a readable episode file"  # how every message about a file that is not one begins
# What zipfile and zlib raise for a damaged archive (NotImplementedError: a garbled version field), and
# what numpy's .npy header reader raises for a damaged header (its fallback parser tokenizes the text):
# each becomes an EpisodeError.
DAMAGED_ARCHIVE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError)
DAMAGED_HEADER = (ValueError, SyntaxError, tokenize.TokenError)


class EpisodeError(ValueError):
    """An action or file the episode cannot take; the message says what is wrong in the person's terms."""


@dataclass
class EpisodeFile:
    """The content of an episode file, checked. images: [T, 20, 20] float32 (ink 1), labels: [T] int64 in
    0..C-1, class_names: C strings, recorded: {model name: probabilities [T, C] float32}."""

    classes: int
    class_names: list
    images: np.ndarray
    labels: np.ndarray
    recorded: dict


def check_label(label, classes):
    """label: an int in 0..C-1 -> label; anything else raises EpisodeError in the pages' 1..C terms."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise EpisodeError(f"a label is a whole number from 1 to {classes}, not {label!r}")
    if not 0 <= label < classes:
        raise EpisodeError(f"label {label + 1} is outside 1..{classes}")
    return int(label)


def check_class_names(names, classes):
    """names: None or C strings (may be empty) -> list of C stripped strings of at most MAX_NAME_LENGTH."""
    if names is None:
        return [""] * classes
    names = [str(n).strip() for n in names]
    if len(names) != classes:
        raise EpisodeError(f"expected {classes} class names, got {len(names)}")
    if any(len(n) > MAX_NAME_LENGTH for n in names):
        raise EpisodeError(f"class names are at most {MAX_NAME_LENGTH} characters")
    return names


# ----------------------------------------------------------------------------------------------------
# Writing


def write_episode_file(target, content):
    """Write an EpisodeFile as a compressed .npz to a path (atomically) or a binary file object."""
    names = sorted(content.recorded)
    T, C = len(content.labels), content.classes
    arrays = {
        "format": np.array(FILE_FORMAT), "classes": np.array(C),
        "images": np.asarray(content.images, dtype=np.float32).reshape(T, IMAGE_SIZE, IMAGE_SIZE),
        "labels": np.asarray(content.labels, dtype=np.int64).reshape(T),
        "class_names": np.array(content.class_names, dtype=f"<U{MAX_NAME_LENGTH}"),
        "models": np.array(names, dtype=f"<U{MAX_NAME_LENGTH}"),
        "probabilities": np.array([content.recorded[n] for n in names], dtype=np.float32).reshape(len(names), T, C),
    }
    if isinstance(target, (str, Path)):
        with atomic_open(target) as f:
            np.savez_compressed(f, **arrays)
    else:
        np.savez_compressed(target, **arrays)


# ----------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ArraySpec:
    """What one array of the file must be: a dtype kind ("i" integer, "f" float, "U" text), a shape whose
    entries are exact sizes or ranges of allowed sizes, at most max_itemsize bytes per value, and how
    to say that to a person."""

    kind: str
    shape: tuple
    what: str
    max_itemsize: int = 8

    def allows(self, shape, dtype):
        kind = "i" if dtype.kind in "iu" else dtype.kind
        return (kind == self.kind and not dtype.hasobject and dtype.itemsize <= self.max_itemsize
                and len(shape) == len(self.shape)
                and all(n == size if isinstance(size, int) else n in size for n, size in zip(shape, self.shape)))


def read_episode_file(source):
    """Read and check an episode file (a path, bytes or a binary file object) -> EpisodeFile. Raises
    EpisodeError for anything that is not an episode file of this format, saying what is wrong."""
    data = file_bytes(source)
    if data.startswith(b"\x93NUMPY"):
        raise EpisodeError(f"{UNREADABLE}: it holds a single NumPy array (.npy), not an episode saved by this app (.npz)")
    if not data.startswith(b"PK\x03\x04"):
        raise EpisodeError(f"{UNREADABLE}: it is not an .npz archive saved by this app")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return read_arrays(archive)
    except EpisodeError:
        raise
    except DAMAGED_ARCHIVE as error:
        raise EpisodeError(f"{UNREADABLE}: it is damaged or incomplete") from error


def file_bytes(source):
    """The content of a path, bytes or binary file object, refusing an empty file or one over
    MAX_FILE_BYTES before reading it all."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise EpisodeError(f"the file is too large for an episode file (over {MAX_FILE_BYTES >> 20} MB)")
            data = path.read_bytes()
        except OSError as error:
            raise EpisodeError(f"cannot read {path.name}: {error.strerror or 'the file cannot be read'}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise EpisodeError(f"the file is too large for an episode file (over {MAX_FILE_BYTES >> 20} MB)")
    if not data:
        raise EpisodeError(f"{UNREADABLE}: the file is empty")
    return data


def read_arrays(archive):
    """Read the arrays of an open episode archive in an order that lets each header be checked against
    the values read before it (T from the labels, C from classes, M from models) -> EpisodeFile."""
    members = archive_members(archive)
    version = read_array(archive, members["format"], ArraySpec("i", (), "a version number"))
    if int(version) != FILE_FORMAT:
        raise EpisodeError(f"episode file format {int(version)}; this app reads format {FILE_FORMAT}")
    classes = int(read_array(archive, members["classes"],
                             ArraySpec("i", (), f"a whole number from 2 to {MAX_CLASSES}")))
    if not 2 <= classes <= MAX_CLASSES:
        raise EpisodeError(f"the file's number of classes must be a whole number from 2 to {MAX_CLASSES}, not {classes}")
    labels = read_array(archive, members["labels"],
                        ArraySpec("i", (range(MAX_STEPS + 1),), f"a list of at most {MAX_STEPS} whole numbers"))
    T = len(labels)
    images = read_array(archive, members["images"], ArraySpec(
        "f", (T, IMAGE_SIZE, IMAGE_SIZE), f"{T} pictures of {IMAGE_SIZE} x {IMAGE_SIZE} numbers, one per label"))
    text = 4 * MAX_NAME_LENGTH  # bytes of a numpy string of MAX_NAME_LENGTH characters
    names = read_array(archive, members["class_names"], ArraySpec(
        "U", (classes,), f"{classes} names of at most {MAX_NAME_LENGTH} characters", text))
    models = read_array(archive, members["models"], ArraySpec(
        "U", (range(MAX_MODELS + 1),), f"a list of at most {MAX_MODELS} names of at most {MAX_NAME_LENGTH} characters", text))
    probabilities = read_array(archive, members["probabilities"], ArraySpec(
        "f", (len(models), T, classes), f"{len(models)} x {T} x {classes} numbers (model x step x class)"))

    outside = np.flatnonzero((labels < 0) | (labels >= classes))
    if len(outside):
        t = outside[0]
        raise EpisodeError(f"step {t + 1} of the file: label {int(labels[t]) + 1} is outside 1..{classes}")
    if not np.isfinite(images).all() or images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise EpisodeError("the file's images must hold values within 0..1")
    if not np.isfinite(probabilities).all():
        raise EpisodeError("the file's probabilities must be finite numbers")
    return EpisodeFile(classes, check_class_names(names, classes), images.astype(np.float32),
                       labels.astype(np.int64), {str(n): p.astype(np.float32) for n, p in zip(models, probabilities)})


def archive_members(archive):
    """{array name: ZipInfo} of the file's arrays, each stored the way np.savez stores it: not encrypted,
    stored or deflated, at most MAX_MEMBER_BYTES once decompressed."""
    members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    missing = [key for key in FILE_ARRAYS if key not in members]
    if missing:
        raise EpisodeError(f"{UNREADABLE}: it lacks {', '.join(missing)}")
    for key in FILE_ARRAYS:
        info = members[key]
        if info.flag_bits & 0x1:
            raise EpisodeError(f"{UNREADABLE}: it is encrypted, and episode files saved by this app never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise EpisodeError(f"{UNREADABLE}: it is compressed in a way this app does not read "
                               f"(zip method {info.compress_type}); save it again from the app")
        if info.file_size > MAX_MEMBER_BYTES:
            raise EpisodeError(f"the episode file is too large: its {key} take over {MAX_MEMBER_BYTES >> 20} MB")
    return {key: members[key] for key in FILE_ARRAYS}


def read_array(archive, info, spec):
    """One .npy member of the archive -> array. Its header is read first and its declared type and shape
    checked against spec; only then are exactly the bytes they need read (so at most MAX_MEMBER_BYTES).
    Reading to the member's end makes zipfile check its CRC, so a flipped byte in the data is caught."""
    key = info.filename.removesuffix(".npy")
    with archive.open(info) as member:
        shape, fortran_order, dtype = read_header(member, key)
        if not spec.allows(shape, dtype):
            raise EpisodeError(f"the file's {key} must be {spec.what}")
        size = math.prod(shape) * dtype.itemsize  # within MAX_MEMBER_BYTES: spec bounds every dimension
        data = member.read(size)
        if len(data) != size or member.read(1):
            raise EpisodeError(f"{UNREADABLE}: its {key} do not have the size their header declares")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def read_header(member, key):
    """The declared (shape, fortran_order, dtype) of a .npy member, read with numpy's header reader (at
    most 10,000 characters of header text, never any data)."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(member)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(member)
    except DAMAGED_HEADER as error:
        raise EpisodeError(f"{UNREADABLE}: its {key} are damaged (not an array as this app saves it)") from error
    raise EpisodeError(f"{UNREADABLE}: its {key} are stored in a NumPy format this app does not read")
