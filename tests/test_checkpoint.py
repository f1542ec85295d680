"""Checkpoints: an exact round trip, plain data only (weights_only), one clear error for every bad file,
no code run from a foreign pickle, and atomic writes."""

import dataclasses
import hashlib
import pickle
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import flmn_core
from flmn_core import CheckpointError
from flmn_core.model.checkpoint import CONFIG_TYPES, FORMAT_VERSION
from flmn_core.model.networks import MODELS

# Small models with non-default settings, so that a config lost on the way would show.
CONFIGS = {
    "flmn": dict(classes=3, controller_size=8, memory_rows=6, word_size=4, label_word_size=3, key_strength=True),
    "mann": dict(classes=3, controller_size=8, memory_rows=6, word_size=4, read_heads=2, write_content="add"),
}


def make_model(name, seed=0):
    torch.manual_seed(seed)
    return flmn_core.build_model(name, **CONFIGS[name])


def episode(classes=3, seed=0):
    """images [2, 6, 20, 20], prev_labels [2, 6, C] (one-hot of random labels, shifted, zeros at t = 0)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.nn.functional.one_hot(torch.randint(0, classes, (2, 6), generator=g), classes).float()
    return torch.rand(2, 6, 20, 20, generator=g), torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], 1)


@pytest.fixture
def saved(tmp_path):
    """A real FLMN checkpoint file -> its path."""
    path = tmp_path / "flmn.pt"
    flmn_core.save_checkpoint(path, make_model("flmn"), step=10)
    return path


def load_error(path):
    """The CheckpointError of load_model(path), checked to name the file."""
    with pytest.raises(CheckpointError) as error:
        flmn_core.load_model(path)
    assert error.value.path == path
    assert str(path) in str(error.value)
    return error.value.reason


# ---------------------------------------------------------------------------------------------------------
# Round trip


@pytest.mark.parametrize("name", ["flmn", "mann"])
def test_round_trip_gives_identical_logits(tmp_path, name):
    model = make_model(name, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, prev_labels = episode()
    model(images, prev_labels).sum().backward()
    optimizer.step()  # weights away from their initial values, and an optimizer state to store
    path = tmp_path / f"{name}.pt"
    flmn_core.save_checkpoint(path, model, step=1234, metrics={"accuracy": 0.75},
                              training={"optimizer": optimizer.state_dict()})

    loaded = flmn_core.load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(images, prev_labels), model(images, prev_labels))
    payload = flmn_core.load_checkpoint(path)
    assert (payload["format_version"], payload["model"], payload["step"]) == (FORMAT_VERSION, name, 1234)
    assert payload["metrics"] == {"accuracy": 0.75}
    assert payload["config"] == model.config_dict()
    assert payload["training"]["optimizer"]["param_groups"][0]["lr"] == 1e-3


def test_checkpoint_is_plain_data(saved):
    """The file loads with torch.load(weights_only=True): plain dicts, strings, numbers and tensors only."""
    payload = torch.load(saved, weights_only=True)
    assert {"format_version", "model", "config", "state_dict", "step", "metrics"} <= set(payload)
    assert isinstance(payload["config"], dict) and payload["config"]["key_strength"] is True
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())


# ---------------------------------------------------------------------------------------------------------
# Bad files: one error type naming the file and the reason


def test_missing_file(tmp_path):
    assert "no such file" in load_error(tmp_path / "absent.pt")


@pytest.mark.parametrize("path", ["/dev/zero", "/tmp"])
def test_a_device_or_a_folder_is_not_read(path):
    assert "not a file" in load_error(Path(path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.touch()
    assert "empty" in load_error(path)


def test_truncated_file(saved):
    content = saved.read_bytes()
    saved.write_bytes(content[: len(content) // 2])
    assert "truncated or corrupt" in load_error(saved)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    assert "not a readable checkpoint" in load_error(path)


def test_plain_dict_without_the_keys(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    assert "not an FLMN project checkpoint" in load_error(path)


def resave(path, **changes):
    """Rewrite a checkpoint file with some of its entries changed."""
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


def test_other_format_version(saved):
    resave(saved, format_version=FORMAT_VERSION + 1)
    assert f"format version {FORMAT_VERSION + 1}" in load_error(saved)


def test_unknown_model_name(saved):
    resave(saved, model="transformer")
    assert "unknown model 'transformer'" in load_error(saved)


def test_state_dict_of_another_model(saved):
    resave(saved, state_dict=make_model("mann").state_dict())
    assert "do not fit the flmn model" in load_error(saved)


def saved_config(path):
    return torch.load(path, weights_only=True)["config"]


# Each entry of a checkpoint in turn, malformed: every one gets a CheckpointError saying what is wrong.
MALFORMED = {
    "model entry a list": (dict(model=["flmn"]), "unknown model ['flmn']"),
    "format_version a tensor": (dict(format_version=torch.tensor(1)), "format version is tensor(1), not a whole number"),
    "format_version a bool": (dict(format_version=True), "not a whole number"),
    "config a list": (dict(config=[("classes", 3)]), "its config is [('classes', 3)], not a dict"),
    "config a tensor": (dict(config=torch.zeros(2)), "not a dict of settings"),
    "state_dict a list": (dict(state_dict=[torch.zeros(2)]), "not a dict of named tensors"),
    "state_dict with a number": (dict(state_dict={"gate": 0.5}), "its weight gate is 0.5, not a floating-point tensor"),
    "step a string": (dict(step="10"), "its step is '10', not a count"),
    "step negative": (dict(step=-1), "not a count"),
    "metrics a list": (dict(metrics=[0.5]), "its metrics are [0.5], not a dict"),
    "training a list": (dict(training=[1]), "its training state is [1], not a dict"),
}


@pytest.mark.parametrize("changes, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_entry_is_refused_with_what_is_wrong(saved, changes, message):
    resave(saved, **changes)
    assert message in load_error(saved)


# A config value of the wrong type, or a setting the model does not have: the checkpoint is refused.
BAD_CONFIG = {
    "classes a string": (dict(classes="3"), "its config's classes is '3', not int"),
    "classes a float": (dict(classes=3.0), "its config's classes is 3.0, not int"),
    "classes a bool": (dict(classes=True), "its config's classes is True, not int"),
    "key_strength an int": (dict(key_strength=1), "its config's key_strength is 1, not bool"),
    "gamma a bool": (dict(gamma=True), "its config's gamma is True, not float"),
    "gamma NaN": (dict(gamma=float("nan")), "its config's gamma is nan, not float"),
    "gamma a tensor": (dict(gamma=torch.tensor(0.9)), "its config's gamma is tensor(0.9000), not float"),
    "unknown setting": (dict(attention_heads=8), "settings the flmn model does not know: attention_heads"),
    "a key that is not a name": ({3: 1}, "settings the flmn model does not know: 3"),
    "odd memory rows": (dict(memory_rows=7), "its config is not valid for the flmn model: memory_rows must be even"),
}


@pytest.mark.parametrize("changes, message", BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_a_bad_config_is_refused_with_what_is_wrong(saved, changes, message):
    resave(saved, config={**saved_config(saved), **changes})
    with pytest.raises(CheckpointError, match=re.escape(message)) as error:
        flmn_core.load_model(saved)
    assert error.value.path == saved


def test_every_config_field_type_is_checked():
    """A config field of a type the checkpoint checker cannot recognise would go unchecked."""
    for name, (_, config_class) in MODELS.items():
        for field in dataclasses.fields(config_class):
            type_name = field.type if isinstance(field.type, str) else field.type.__name__
            assert type_name in CONFIG_TYPES, f"{name} config field {field.name}: type {type_name}"


def test_a_huge_config_is_refused_before_any_memory_is_taken(saved, monkeypatch):
    """1.5M classes would make the first layer 800 x 1.5M floats (4.8 GB): refused from the config and the
    shapes of the weights, before a real model is built (a model built here would fail the test, not the
    machine)."""
    built = []
    model_class, config_class = MODELS["flmn"]

    def watched_init(self, config):
        device = torch.get_default_device().type
        built.append(device)
        assert device == "meta" or config.classes < 1000, "a real model was built from the huge config"
        original_init(self, config)

    original_init = model_class.__init__
    monkeypatch.setattr(model_class, "__init__", watched_init)
    resave(saved, config={**saved_config(saved), "classes": 1_500_000})
    reason = load_error(saved)
    assert "config" in reason
    assert "cpu" not in built


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_weights_that_are_not_finite_are_refused(saved, value):
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["classifier.weight"][0, 0] = value
    torch.save(payload, saved)
    assert "its weight classifier.weight holds NaN or infinite values" in load_error(saved)


@pytest.mark.parametrize("tensor", [torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.bool),
                                    torch.zeros(3).to_sparse()], ids=["int", "bool", "sparse"])
def test_weights_that_are_not_dense_floats_are_refused(saved, tensor):
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["gate"] = tensor
    torch.save(payload, saved)
    assert "its weight gate is" in load_error(saved)


class CreatesMarker:
    """Unpickling this calls open(marker, "w"): a stand-in for any code a foreign pickle could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def save_crafted(payload, path, how):
    """Write payload the way `how` says: torch.save's zip file at a pickle protocol (2 is torch's default;
    4 imports with STACK_GLOBAL; 0 writes text opcodes, no tensors possible), or a bare pickle."""
    if how == "bare pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, pickle_protocol=int(how.split()[-1]))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")  # torch notes that it does not write protocol 4
@pytest.mark.parametrize("how", ["zip, protocol 2", "zip, protocol 4", "zip, protocol 0", "bare pickle"])
def test_pickle_that_would_run_code_is_refused(saved, tmp_path, how):
    payload = torch.load(saved, weights_only=True)
    if how == "zip, protocol 0":
        del payload["state_dict"]  # protocol 0 cannot hold tensors; the file is refused before that matters
    payload["metrics"] = CreatesMarker(tmp_path / "marker")
    save_crafted(payload, saved, how)
    # The file is really dangerous: an unrestricted torch.load of the same payload runs the code.
    payload["metrics"] = CreatesMarker(tmp_path / "proof")
    save_crafted(payload, tmp_path / "proof.pt", how)
    try:
        torch.load(tmp_path / "proof.pt", weights_only=False)["metrics"].close()
    except RuntimeError:  # a bare pickle: torch runs it as the legacy format's header, then finds no magic number
        pass
    assert (tmp_path / "proof").exists()

    reason = load_error(saved)
    with pytest.raises(CheckpointError):
        flmn_core.load_checkpoint(saved)
    assert not (tmp_path / "marker").exists()
    assert "refused" in reason and "io.open" in reason  # says what it refused ...
    assert "\x1b" not in reason and "weights_only" not in reason  # ... without terminal codes or unsafe advice


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
def test_plain_data_in_a_pickle_protocol_torch_does_not_read_is_not_called_code(saved):
    torch.save(torch.load(saved, weights_only=True), saved, pickle_protocol=4)
    reason = load_error(saved)
    assert "pickled in a form torch's safe loader does not accept" in reason and "code" not in reason


def test_damaged_copies_are_refused_unless_every_weight_is_intact(saved):
    """Byte flips and truncations of a real checkpoint: each copy raises CheckpointError, never anything
    else, or loads with every weight bit for bit the original's (a flip in a zip header field that
    nothing reads, a timestamp say). Every flip in the data of a weight is found by its checksum."""
    original = {key: value.clone() for key, value in flmn_core.load_checkpoint(saved)["state_dict"].items()}
    content = saved.read_bytes()
    rng = random.Random(0)
    variants = [content[:cut] for cut in rng.sample(range(1, len(content)), 100)]
    for position in rng.sample(range(len(content)), 400):
        flipped = bytearray(content)
        flipped[position] ^= rng.randrange(1, 256)
        variants.append(bytes(flipped))
    outcomes = {"loaded": 0, "refused": 0}
    for data in variants:
        saved.write_bytes(data)
        try:
            weights = flmn_core.load_checkpoint(saved)["state_dict"]
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        assert all(torch.equal(weights[key], value) for key, value in original.items())
        outcomes["loaded"] += 1
    assert outcomes["refused"] >= 480, outcomes  # the weights' bytes are nearly all of the file


def storage_of(tensor, size):
    """A fresh storage of `size` floats that begins with tensor's values."""
    storage = torch.zeros(size)
    storage[: tensor.numel()] = tensor.flatten()
    return storage


# Weights made to pass for a model's own: each lies about its shape, its storage, its device or its dtype.
# name -> weight -> the forged weight, or None where the forgery would be a true weight (a view of a single
# value as the shape of a single value is just that value).
FORGED = {
    "a single value viewed as a huge shape": lambda w: torch.tensor([0.5]).as_strided((30000, 30000), (0, 0)),
    "a single value viewed as its shape":
        lambda w: torch.tensor([0.5]).as_strided(w.shape, [0] * w.dim()) if w.numel() > 1 else None,
    "on the meta device": lambda w: torch.empty_like(w, device="meta"),
    "float64": lambda w: w.double(),
    "float16": lambda w: w.half(),
    "one row more": lambda w: torch.cat([w, w[:1]]) if w.dim() else w.reshape(1),
    "a view into a larger storage": lambda w: storage_of(w, w.numel() + 7)[: w.numel()].view(w.shape),
    "a view past the start of its storage":
        lambda w: storage_of(torch.cat([w.flatten()[:1], w.flatten()]), w.numel() + 1)[1:].view(w.shape),
    "every other value of a storage": lambda w: torch.stack([w, w], -1)[..., 0] if w.numel() > 1 else None,
}


@pytest.mark.parametrize("forgery", FORGED.values(), ids=FORGED.keys())
def test_every_weight_forged_is_refused_by_name_before_its_values_are_read(saved, forgery, monkeypatch):
    """Each weight of a real checkpoint in turn, forged: refused with a CheckpointError naming it, and no
    value of any weight read (torch.isfinite, the value check, is never reached)."""
    payload = torch.load(saved, weights_only=True)
    read = []
    monkeypatch.setattr(torch, "isfinite", lambda tensor: read.append(tensor) or torch.ones((), dtype=torch.bool))
    forged_weights = 0
    for key, weight in payload["state_dict"].items():
        forged = forgery(weight)
        if forged is None:
            continue
        torch.save({**payload, "state_dict": {**payload["state_dict"], key: forged}}, saved)
        assert key in load_error(saved) and read == []
        forged_weights += 1
    assert forged_weights >= len(payload["state_dict"]) // 2


def test_two_weights_sharing_one_storage_are_refused(saved):
    payload = torch.load(saved, weights_only=True)
    weights = dict(payload["state_dict"])
    first, second = [key for key, value in weights.items() if value.numel() > 1][:2]
    storage = torch.cat([weights[first].flatten(), weights[second].flatten()])
    weights[first] = storage[: weights[first].numel()].view(weights[first].shape)
    weights[second] = storage[weights[first].numel():].view(weights[second].shape)
    torch.save({**payload, "state_dict": weights}, saved)
    assert "not a tensor of its own" in load_error(saved)


def test_a_tiny_file_claiming_a_huge_weight_takes_no_memory(saved, tmp_path):
    """A weight stored as one value and viewed as 16,000 x 16,000 (a file of a few KB): refused by a fresh
    process whose peak memory stays that of loading torch, where reading its values took gigabytes."""
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["classifier.weight"] = torch.tensor([0.5]).as_strided((16000, 16000), (0, 0))
    torch.save(payload, saved)
    baseline = subprocess.run([sys.executable, "-c", PEAK_OF.format(path=str(tmp_path / "absent.pt"))],
                              capture_output=True, text=True, check=True)
    crafted = subprocess.run([sys.executable, "-c", PEAK_OF.format(path=str(saved))], capture_output=True, text=True,
                             check=True)
    assert "refused" in crafted.stdout and "classifier.weight" in crafted.stdout
    assert int(crafted.stdout.split()[-1]) < int(baseline.stdout.split()[-1]) + 100_000  # KiB: under 100 MB more


# Loads a checkpoint in a fresh process and prints what happened and its peak resident memory in KiB.
PEAK_OF = """
import resource, flmn_core
try:
    flmn_core.load_model({path!r})
    print("loaded", end=" ")
except flmn_core.CheckpointError as error:
    print("refused:", error, end=" ")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile's, as the doubled member is written
def test_a_compressed_or_doubled_archive_member_is_refused(saved, tmp_path):
    with zipfile.ZipFile(saved) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    for name, compression, extra in (("compressed.pt", zipfile.ZIP_DEFLATED, []),
                                     ("doubled.pt", zipfile.ZIP_STORED, members[-1:])):
        with zipfile.ZipFile(tmp_path / name, "w", compression) as archive:
            for member, data in members + extra:
                archive.writestr(member, data)
        reason = load_error(tmp_path / name)
        assert ("compressed" if extra == [] else "twice") in reason


def test_a_checkpoint_whose_digest_is_not_its_cards_is_refused(saved):
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    assert flmn_core.load_checkpoint(saved, sha256=digest)["step"] == 10
    resave(saved, step=11)  # a valid file, another one
    with pytest.raises(CheckpointError, match="not .* as its model card states") as error:
        flmn_core.load_checkpoint(saved, sha256=digest)
    assert error.value.path == saved


# ---------------------------------------------------------------------------------------------------------
# Atomic writes


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(saved, monkeypatch):
    before = saved.read_bytes()

    def save_half_then_fail(obj, f, *args, **kwargs):
        f.write(b"the first half of a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        flmn_core.save_checkpoint(saved, make_model("flmn", seed=1), step=20)
    with pytest.raises(OSError, match="No space left"):
        flmn_core.save_checkpoint(saved.parent / "new.pt", make_model("flmn", seed=1), step=20)
    monkeypatch.undo()

    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary, no half-written new.pt
    assert flmn_core.load_checkpoint(saved)["step"] == 10
