"""flmn_core.interactive.episode_file: a bad episode file never costs the person anything. Each named kind of broken or
hostile file gets an EpisodeError saying what is wrong in the person's terms (never numpy's pickle
advice, never a traceback), an episode of another number of classes than the models is refused, a huge
declared array is refused from its header without allocating it, and a byte-flipping fuzz of valid files
gives only valid episodes or EpisodeError."""

import io
import random
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

from flmn_core import build_model
from flmn_core.interactive.episode import EpisodeError, InteractiveEpisode
from flmn_core.interactive.episode_file import MAX_STEPS, read_episode_file

C = 3  # classes of the tiny models
STEPS = 4


def tiny_models(classes=C):
    """A tiny FLMN and a tiny MANN with random weights, in eval mode."""
    torch.manual_seed(0)
    small = dict(classes=classes, controller_size=12, memory_rows=8, word_size=6)
    return {"flmn": build_model("flmn", **small).eval(), "mann": build_model("mann", **small).eval()}


def taught_episode(classes=C, steps=STEPS, names=None):
    """An episode taught `steps` steps of random pictures by the tiny models, with class names."""
    generator = torch.Generator().manual_seed(1)
    models = tiny_models(classes)
    episode = InteractiveEpisode(classes, names or [f"c{k}" for k in range(classes)])
    for t in range(steps):
        episode.predict(models, torch.rand(20, 20, generator=generator))
        episode.commit(t % classes)
    return episode


@pytest.fixture(scope="module")
def valid_arrays():
    """The arrays of a valid episode file, as the app saves it."""
    with np.load(io.BytesIO(taught_episode().to_bytes())) as archive:
        return {key: archive[key] for key in archive.files}


def npz(arrays, compression=zipfile.ZIP_STORED, **members):
    """An .npz file of arrays (plain .npy members) plus raw members {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array))  # pickles an object array, as np.savez would
            archive.writestr(f"{key}.npy", member.getvalue())
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_changes(arrays, **changes):
    """arrays with some replaced (None removes one)."""
    changed = dict(arrays)
    for key, value in changes.items():
        if value is None:
            del changed[key]
        else:
            changed[key] = value
    return changed


def npy_header(shape, descr="<f4", version=(1, 0)):
    """A .npy file that declares shape and descr and holds only a few bytes of data."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buffer, header)
    else:
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue() + bytes(64)


def refusal(data, **kwargs):
    """The EpisodeError's message for loading data; it must not read like a traceback or numpy's advice."""
    with pytest.raises(EpisodeError) as error:
        InteractiveEpisode.load(data, **kwargs)
    message = str(error.value)
    for leak in ("pickle", "allow_pickle", "Traceback", "/tmp", "/work", "Error:"):
        assert leak not in message, message
    return message


def assert_valid(episode):
    """A loaded episode the app can run: matching images and labels in range, C names, recorded
    probabilities of shape [T, C], and models of its C classes replay it."""
    T, classes = len(episode.labels), episode.classes
    assert len(episode.images) == T <= MAX_STEPS and 2 <= classes and len(episode.class_names) == classes
    for image in episode.images:
        assert image.shape == (20, 20) and image.dtype == torch.float32
        assert torch.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
    assert all(0 <= label < classes for label in episode.labels)
    assert all(probs.shape == (T, classes) and np.isfinite(probs).all() for probs in episode.recorded.values())


# ---------------------------------------------------------------------------------------------------------
# Valid files


def test_a_saved_episode_reads_back_exactly(tmp_path):
    episode = taught_episode(names=["alpha", "", "gamma"])
    episode.save(tmp_path / "episode.npz")
    content = read_episode_file(tmp_path / "episode.npz")
    assert content.classes == C and content.class_names == ["alpha", "", "gamma"]
    assert content.labels.tolist() == episode.labels
    np.testing.assert_array_equal(content.images, torch.stack(episode.images).numpy())
    assert set(content.recorded) == {"flmn", "mann"}
    np.testing.assert_array_equal(content.recorded["flmn"], episode.probabilities("flmn").numpy())


def test_a_file_saved_with_plain_numpy_reads_too(valid_arrays):
    """np.savez (stored, not compressed) and float64 or big-endian arrays are the same episode."""
    arrays = with_changes(valid_arrays, images=valid_arrays["images"].astype(">f8"),
                          labels=valid_arrays["labels"].astype(">i4"))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    loaded = InteractiveEpisode.load(buffer.getvalue())
    assert_valid(loaded)
    assert loaded.labels == valid_arrays["labels"].tolist()


# ---------------------------------------------------------------------------------------------------------
# More labels than the models tell apart


@pytest.mark.parametrize("classes", [6, 100])
def test_an_episode_of_more_labels_than_the_models_is_refused(classes):
    data = taught_episode(classes=classes).to_bytes()
    message = refusal(data, labels=5)
    assert f"uses {classes} labels" in message and "tell at most 5 apart" in message
    assert InteractiveEpisode.load(data, labels=classes).classes == classes  # with such models it loads


@pytest.mark.parametrize("classes", [2, 5])
def test_an_episode_of_as_many_labels_or_fewer_loads(classes):
    assert InteractiveEpisode.load(taught_episode(classes=classes).to_bytes(), labels=5).classes == classes


# ---------------------------------------------------------------------------------------------------------
# Broken files, each named


def flip_inside(data, member):
    """data with one byte flipped in the middle of a zip member's stored (compressed) bytes."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    name_length, extra_length = (int.from_bytes(data[info.header_offset + k: info.header_offset + k + 2], "little")
                                 for k in (26, 28))
    position = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    flipped = bytearray(data)
    flipped[position] ^= 0x55
    return bytes(flipped)


def zip_with_flag(data, member, flag):
    """data with a general-purpose flag bit set on one member, in its local and its central header."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = archive.getinfo(member)
    patched = bytearray(data)
    patched[info.header_offset + 6] |= flag
    central = data.index(b"PK\x01\x02")
    while True:  # find the central directory entry of this member
        name_length = int.from_bytes(data[central + 28: central + 30], "little")
        if data[central + 46: central + 46 + name_length] == member.encode():
            break
        extra, comment = (int.from_bytes(data[central + k: central + k + 2], "little") for k in (30, 32))
        central += 46 + name_length + extra + comment
    patched[central + 8] |= flag
    return bytes(patched)


def named_cases():
    """(case, file bytes, what the message must say) for each kind of broken file the issue names and more."""
    with np.load(io.BytesIO(taught_episode().to_bytes())) as archive:
        arrays = {key: archive[key] for key in archive.files}
    compressed = taught_episode().to_bytes()
    npy = io.BytesIO()
    np.save(npy, arrays["images"])
    bzip2 = io.BytesIO()
    with zipfile.ZipFile(bzip2, "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, value)
            archive.writestr(f"{key}.npy", member.getvalue(), compress_type=zipfile.ZIP_BZIP2)
    return [
        ("empty", b"", "the file is empty"),
        ("a PNG picture", b"\x89PNG\r\n\x1a\n not an episode", "not an .npz archive"),
        ("a PDF", b"%PDF-1.4 something else", "not an .npz archive"),
        ("raw numbers", np.arange(3).tobytes(), "not an .npz archive"),
        ("an .npy renamed .npz", npy.getvalue(), "a single NumPy array (.npy)"),
        ("labels missing", npz(with_changes(arrays, labels=None)), "it lacks labels"),
        ("labels a scalar", npz(with_changes(arrays, labels=np.array(3))),
         f"labels must be a list of at most {MAX_STEPS}"),
        ("labels as floats", npz(with_changes(arrays, labels=arrays["labels"].astype(float))), "labels must be a list"),
        ("a label out of range", npz(with_changes(arrays, labels=np.array([0, 1, 2, 3]))),
         "step 4 of the file: label 4 is outside 1..3"),
        ("a negative label", npz(with_changes(arrays, labels=np.array([0, -1, 2, 0]))), "step 2 of the file: label 0"),
        ("more labels than images", npz(with_changes(arrays, labels=np.array([0, 1, 2, 0, 1]))),
         "images must be 5 pictures of 20 x 20"),
        ("too many steps", npz(with_changes(arrays, labels=np.zeros(MAX_STEPS + 1, dtype=int))),
         f"at most {MAX_STEPS}"),
        ("images out of range", npz(with_changes(arrays, images=np.full((4, 20, 20), 2.0, np.float32))), "within 0..1"),
        ("images NaN", npz(with_changes(arrays, images=np.full((4, 20, 20), np.nan, np.float32))), "within 0..1"),
        ("format as a string", npz(with_changes(arrays, format=np.array("1"))), "format must be a version number"),
        ("another format", npz(with_changes(arrays, format=np.array(99))), "episode file format 99; this app reads format 1"),
        ("one class", npz(with_changes(arrays, classes=np.array(1))), "from 2 to 100, not 1"),
        ("classes a list", npz(with_changes(arrays, classes=np.array([3]))), "classes must be a whole number"),
        ("names of objects", npz(with_changes(arrays, class_names=np.array([{"a": 1}, None, 3], dtype=object))),
         "class_names must be 3 names"),
        ("too few names", npz(with_changes(arrays, class_names=np.array(["a", "b"]))), "class_names must be 3 names"),
        ("names too long", npz(with_changes(arrays, class_names=np.array(["x" * 41] * 3))), "at most 40 characters"),
        ("probabilities of another shape", npz(with_changes(arrays, probabilities=np.zeros((2, 4, 4), np.float32))),
         "probabilities must be 2 x 4 x 3 numbers"),
        ("probabilities infinite", npz(with_changes(arrays, probabilities=np.full((2, 4, 3), np.inf, np.float32))),
         "probabilities must be finite"),
        ("a huge declared array", npz(with_changes(arrays, images=None), **{"images.npy": npy_header((2 ** 45, 20, 20))}),
         "images must be 4 pictures"),
        ("a huge declared list", npz(with_changes(arrays, labels=None), **{"labels.npy": npy_header((2 ** 50,), "<i8")}),
         f"labels must be a list of at most {MAX_STEPS}"),
        ("long declared strings", npz(with_changes(arrays, models=None), **{"models.npy": npy_header((2,), "<U100000")}),
         "models must be a list of at most 16 names of at most 40 characters"),
        ("strings numpy refuses", npz(with_changes(arrays, models=None), **{"models.npy": npy_header((2,), "<U2000000000")}),
         "its models are damaged"),
        ("a huge declared sub-array", npz(with_changes(arrays, images=None),
                                          **{"images.npy": npy_header((4, 20, 20), [("x", "<f4", (2 ** 20,))])}),
         "images must be 4 pictures"),
        ("a header that is not a dict", npz(with_changes(arrays, labels=None),
                                            **{"labels.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i8',    "}),
         "its labels are damaged"),
        ("a negative declared size", npz(with_changes(arrays, labels=None), **{"labels.npy": npy_header((-4,), "<i8")}),
         "labels must be a list"),
        ("less data than declared", npz(with_changes(arrays, labels=None), **{"labels.npy": npy_header((4,), "<i8")[:-40]}),
         "labels do not have the size their header declares"),
        ("more data than declared", npz(with_changes(arrays, labels=None), **{"labels.npy": npy_header((4,), "<i8") + b"x"}),
         "labels do not have the size their header declares"),
        ("a NumPy format 3 header", npz(with_changes(arrays, labels=None),
                                        **{"labels.npy": b"\x93NUMPY\x03\x00" + bytes(64)}), "a NumPy format this app does not read"),
        ("an array member that is not .npy", npz(with_changes(arrays, labels=None), **{"labels.npy": b"hello"}),
         "its labels are damaged"),
        ("a flipped byte (zlib error)", flip_inside(compressed, "images.npy"), "damaged or incomplete"),
        ("a flipped byte in stored data", flip_inside(npz(arrays), "images.npy"), "damaged or incomplete"),
        ("cut in half", compressed[: len(compressed) // 2], "damaged or incomplete"),
        ("unsupported compression", bzip2.getvalue(), "compressed in a way this app does not read (zip method 12)"),
        ("the encrypted flag", zip_with_flag(compressed, "labels.npy", 0x1), "it is encrypted"),
    ]


@pytest.mark.parametrize("case, data, message", named_cases(), ids=[case for case, _, _ in named_cases()])
def test_a_broken_file_gets_a_clear_message(case, data, message):
    assert message in refusal(data)


def test_a_huge_declared_array_is_never_allocated(valid_arrays):
    """The header declares 2^45 x 20 x 20 float32 (5 PB): refused from the header; the reader's peak
    allocation stays far below what one real episode file takes."""
    data = npz(with_changes(valid_arrays, images=None), **{"images.npy": npy_header((2 ** 45, 20, 20))})
    tracemalloc.start()
    try:
        with pytest.raises(EpisodeError):
            read_episode_file(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated"


def test_a_bad_file_keeps_the_episode_so_far(valid_arrays):
    """A refused load changes nothing: the app keeps the episode it had (load returns a new one or raises)."""
    episode = taught_episode()
    before = (list(episode.labels), [image.clone() for image in episode.images])
    with pytest.raises(EpisodeError):
        InteractiveEpisode.load(npz(with_changes(valid_arrays, labels=np.array(3))))
    assert episode.labels == before[0] and all(torch.equal(a, b) for a, b in zip(episode.images, before[1]))


# ---------------------------------------------------------------------------------------------------------
# Fuzz: every damaged copy of a valid file loads as a valid episode or raises EpisodeError


def damaged_copies(data, seed, positions=None):
    """data with one byte changed at each position (all, or a sample), and cut at a sample of lengths."""
    rng = random.Random(seed)
    positions = range(len(data)) if positions is None else rng.sample(range(len(data)), positions)
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= rng.randrange(1, 256)
        yield bytes(flipped)
    for cut in rng.sample(range(len(data)), min(len(data), 200)):
        yield data[:cut]


# A damaged header may hold a backslash before a letter, which Python warns about while numpy parses it.
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.parametrize("kind", ["compressed, every byte", "stored, 3000 bytes at random"])
def test_damaged_copies_load_as_valid_episodes_or_raise_episode_error(valid_arrays, kind):
    if kind.startswith("compressed"):
        data, positions = taught_episode().to_bytes(), None
    else:
        data, positions = npz(valid_arrays), 3000
    outcomes = {"loaded": 0, "refused": 0}
    for variant in damaged_copies(data, seed=len(kind), positions=positions):
        try:
            episode = InteractiveEpisode.load(variant)
        except EpisodeError:
            outcomes["refused"] += 1
            continue
        assert_valid(episode)
        outcomes["loaded"] += 1
    print(f"\n{kind}: {outcomes}")
    assert outcomes["refused"] >= 200  # at least the truncations
