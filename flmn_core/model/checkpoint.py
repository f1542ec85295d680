"""Checkpoint files: one file per model, safe to load, checked before use, written atomically.

A checkpoint is a plain dict that `torch.load(path, weights_only=True)` can read (no pickled code):
    format_version  int, FORMAT_VERSION
    model           "flmn" or "mann"
    config          the model's config as a plain dict: build_model(model, **config) rebuilds it
    state_dict      the weights: {name: floating-point tensor}, all finite
    step            training episodes seen
    metrics         a dict of plain values (accuracies, CPU time; shipped files also hold train_args, the
                    run's arguments, written by flmn_core.results.publish)
    training        optional: what `--resume` needs (optimizer state, RNG state, the run's TrainConfig)
    train_config    optional: the TrainConfig that trained it, as a plain dict (`train --config` reads it)

On loading, the file's zip archive is verified first (every member's CRC-32, so a flipped byte anywhere is
found; with the sha256 a shipped checkpoint's model card states, the whole file), then every entry, the
config before anything is built from it, and each weight's name, shape, dtype, device and storage before
any of its values is read: a damaged or hostile file gets a CheckpointError naming it, never a traceback or
a huge allocation. Every tensor is written from the CPU and read onto it (map_location), so that a
checkpoint saved by a run on a GPU loads on a machine without one.
"""

import hashlib
import io
import math
import pickle
import pickletools
import reprlib
import zipfile
from collections import deque
from dataclasses import fields
from pathlib import Path

import torch

from flmn_core.files import atomic_open
from flmn_core.model.networks import MODELS, model_name

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model", "config", "state_dict", "step", "metrics")
# The pickled structure of a checkpoint (its tensors' data lie beside it) takes a few KB; reading more
# than this to explain why a file was refused would only cost memory.
MAX_PICKLE_BYTES = 16 << 20
# How a value of each config field type is recognised. bool is a subclass of int, so types are compared
# exactly; a float setting may be written as a whole number. tests/test_checkpoint.py checks that every
# field of every model config has its type here.
CONFIG_TYPES = {
    "int": lambda value: type(value) is int,
    "bool": lambda value: type(value) is bool,
    "float": lambda value: type(value) in (int, float) and math.isfinite(value),
    "str": lambda value: type(value) is str,
}
# Modules of the building blocks of plain data that a checkpoint's pickle imports (tensor rebuilders,
# storages, OrderedDict, bytes): a file that imports anything else would run code.
PLAIN_DATA_MODULES = ("torch", "collections", "_codecs")
# Pickle opcodes, by pickletools' names, that push a string, store the top of the stack in the memo, or
# push a memo entry: enough to name what STACK_GLOBAL imports.
STRING_PUSHES = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def save_checkpoint(path, model, step, metrics=None, training=None, train_config=None):
    """Write the model (and optional training state) to path atomically: a temporary file in the same
    folder, flushed to disk, then renamed over path, so a crash never leaves a half-written checkpoint."""
    payload = {
        "format_version": FORMAT_VERSION, "model": model_name(model), "config": model.config_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": int(step), "metrics": dict(metrics or {}),
    }
    if training is not None:
        payload["training"] = on_cpu(training)
    if train_config is not None:
        payload["train_config"] = train_config
    atomic_torch_save(payload, path)


def on_cpu(value):
    """value (tensors in dicts, lists and tuples, as an optimizer's state_dict holds them) with every tensor
    copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(item) for item in value)
    return value


def atomic_torch_save(obj, path):
    """torch.save into memory, then its bytes to a temporary file beside path, renamed over path. A full
    disk then fails as the OSError of that write (torch's own file writer turns it into a RuntimeError,
    "unexpected pos", that says nothing of the disk)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_open(path) as f:
        f.write(buffer.getbuffer())


# ----------------------------------------------------------------------------------------------------
# Loading


def load_checkpoint(path, sha256=None):
    """Read and check a checkpoint file -> its dict. Raises CheckpointError for a missing, empty,
    truncated, corrupt or foreign file, one that would need to unpickle code, or one whose entries are
    not what this module writes (see the module docstring). sha256: the hex digest the file must have
    (a shipped checkpoint's, from its model card: flmn_core.model.zoo.card_sha256), or None."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "not a file (a folder, a device?)" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty")
    check_archive(path)
    if sha256 is not None:
        check_digest(path, sha256)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged file fails in torch, zipfile or the unpickler in many ways
        raise CheckpointError(path, unreadable_reason(path, error)) from error
    check_payload(payload, path)
    return payload


def check_archive(path):
    """A checkpoint is a zip archive as torch.save writes it: members stored uncompressed (so that checking
    one costs no more than its bytes on disk), no name twice (zipfile and torch's reader could then read
    different members), and each member's CRC-32 right. torch's reader checks none of this, so a flipped
    byte in a weight would load."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(path, unreadable_reason(path))
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if any(m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size for m in members):
                raise CheckpointError(path, "not a checkpoint: its archive holds compressed members, which "
                                            "torch.save never writes")
            if len({m.filename for m in members}) != len(members):
                raise CheckpointError(path, "not a checkpoint: its archive holds a member name twice")
            damaged = archive.testzip()
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged zip fails in zipfile or zlib in many ways
        raise CheckpointError(path, "not a readable checkpoint (truncated or corrupt?)") from error
    if damaged is not None:
        raise CheckpointError(path, f"corrupt: the checksum of its member {damaged} fails (the file was damaged "
                                    "on disk or on the way; copy it again)")


def check_digest(path, sha256):
    """The file's sha256 must be the one given (a shipped checkpoint's, from its model card)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise CheckpointError(path, f"its sha256 is {digest.hexdigest()}, not {sha256} as its model card states: "
                                    "the file was changed or damaged since it was published")


def check_payload(payload, path):
    """Check every entry of a loaded checkpoint dict; raise CheckpointError naming the first problem."""
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise CheckpointError(path, f"not an FLMN project checkpoint (expected a dict with {', '.join(REQUIRED_KEYS)})")
    version = payload["format_version"]
    if type(version) is not int:
        raise CheckpointError(path, f"its format version is {shown(version)}, not a whole number")
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r}, this code reads {FORMAT_VERSION}")
    name = payload["model"]
    if type(name) is not str or name not in MODELS:
        raise CheckpointError(path, f"unknown model {shown(name)}; expected one of {sorted(MODELS)}")
    config = model_config(name, payload["config"], path)
    check_weights(payload["state_dict"], name, expected_weights(name, config, path), path)
    if type(payload["step"]) is not int or payload["step"] < 0:
        raise CheckpointError(path, f"its step is {shown(payload['step'])}, not a count of episodes")
    if not isinstance(payload["metrics"], dict):
        raise CheckpointError(path, f"its metrics are {shown(payload['metrics'])}, not a dict")
    if not isinstance(payload.get("training", {}), dict):
        raise CheckpointError(path, f"its training state is {shown(payload['training'])}, not a dict")


def model_config(name, config, path):
    """The config object of model `name` from a checkpoint's plain config dict; raise CheckpointError
    for anything but known settings of the right types that the config class accepts (its
    `__post_init__` checks their ranges). Settings left out take their defaults."""
    config_class = MODELS[name][1]
    if not isinstance(config, dict):
        raise CheckpointError(path, f"its config is {shown(config)}, not a dict of settings")
    types = {field.name: field.type if isinstance(field.type, str) else field.type.__name__
             for field in fields(config_class)}
    unknown = sorted(str(key) for key in config if key not in types)
    if unknown:
        raise CheckpointError(path, f"its config has settings the {name} model does not know: {', '.join(unknown)}")
    for key, value in config.items():
        if not CONFIG_TYPES[types[key]](value):
            raise CheckpointError(path, f"its config's {key} is {shown(value)}, not {types[key]}")
    try:
        return config_class(**config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(path, f"its config is not valid for the {name} model: {error}") from error


def expected_weights(name, config, path):
    """The weights the model of a config has -> {name: tensor on the meta device (shape and dtype, no
    memory)}; a config asking for absurd sizes allocates nothing here."""
    try:
        with torch.device("meta"):
            return MODELS[name][0](config).state_dict()
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(path, f"its config does not make a {name} model: {error}") from error


def check_weights(state_dict, name, expected, path):
    """The weights must be dense floating-point tensors with the names, shapes and dtypes of the model
    `name` of the checkpoint's config (`expected`: expected_weights), each on the CPU in a storage of its
    own that it fills exactly, and finite. Everything but the values is checked first: a tensor may claim
    a huge shape over a tiny storage (a stride of 0), and reading its values would then allocate for the
    whole shape."""
    if not isinstance(state_dict, dict) or not all(isinstance(key, str) for key in state_dict):
        raise CheckpointError(path, f"its weights (state_dict) are {shown(state_dict)}, not a dict of named tensors")
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided or not tensor.is_floating_point():
            raise CheckpointError(path, f"its weight {key} is {shown(tensor)}, not a floating-point tensor")
    given = {key: tuple(tensor.shape) for key, tensor in state_dict.items()}
    shapes = {key: tuple(tensor.shape) for key, tensor in expected.items()}
    if given != shapes:
        raise CheckpointError(path, f"its weights do not fit the {name} model its config "
                                    f"describes: {weights_difference(given, shapes)}")
    storages = set()
    for key, tensor in state_dict.items():
        if tensor.device.type != "cpu" or tensor.dtype != expected[key].dtype:
            raise CheckpointError(path, f"its weight {key} is {tensor.dtype} on {tensor.device.type}, not "
                                        f"{expected[key].dtype} on cpu")
        storage = tensor.untyped_storage()
        if (not tensor.is_contiguous() or tensor.storage_offset() != 0
                or storage.nbytes() != tensor.numel() * tensor.element_size()
                or (tensor.numel() and storage.data_ptr() in storages)):
            raise CheckpointError(path, f"its weight {key} is not a tensor of its own: a view of "
                                        f"{storage.nbytes():,} bytes of storage, shared or strided")
        storages.add(storage.data_ptr())
    for key, tensor in state_dict.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(path, f"its weight {key} holds NaN or infinite values (the training run diverged)")


def shown(value):
    """A short description of a value for a message: its repr, cut to a few dozen characters."""
    return reprlib.repr(value)


def model_from_checkpoint(payload, path="<checkpoint>"):
    """Build the model of a checkpoint dict that load_checkpoint has checked, with its weights -> model."""
    name = payload["model"]
    with torch.device("cpu"):  # the CPU's tensors whatever the default device
        model = MODELS[name][0](model_config(name, payload["config"], path))
    model.load_state_dict(payload["state_dict"])
    return model


def weights_difference(given, expected):
    """The first difference between two {weight name: shape} dicts, in words."""
    missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing:
        return f"{missing[0]} is missing" + (f" ({len(missing)} weights in all)" if len(missing) > 1 else "")
    if extra:
        return f"{extra[0]} is not a weight of this model" + (f" ({len(extra)} in all)" if len(extra) > 1 else "")
    key = next(key for key in expected if given[key] != expected[key])
    return f"{key} has shape {list(given[key])}, the config makes {list(expected[key])}"


def load_model(path, sha256=None, device="cpu"):
    """Load a model from a checkpoint file (with this sha256, if given) onto `device`, in eval mode. Raises
    CheckpointError when it cannot."""
    model = model_from_checkpoint(load_checkpoint(path, sha256), path)
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------------
# Why a file could not be read, told without running it


def unreadable_reason(path, error=None):
    """Why a file is not a checkpoint, in words: torch.load(weights_only=True) failed on it with `error`,
    or it is no zip archive (error None). torch's own message is not used: its wording changes between
    versions, and it advises loading the file with weights_only=False, which would run whatever code the
    file holds. Instead the pickle inside the file is read op by op (never run): a complete pickle that
    imports something beyond the building blocks of plain data is refused as code, named; one that torch
    refused otherwise is plain data pickled in a form torch's safe loader does not read (a protocol above
    2, say); anything else is a damaged file."""
    imports = pickled_imports(path)
    if imports is None or not (error is None or isinstance(error, pickle.UnpicklingError)):
        return "not a readable checkpoint (truncated or corrupt?)"
    foreign = sorted(name for name in imports if name.split(".")[0] not in PLAIN_DATA_MODULES)
    if foreign:
        return (f"refused: loading it would import {', '.join(foreign)}, which could run code; a checkpoint "
                "holds only plain data (tensors, numbers, strings)")
    if error is None:
        return "not a readable checkpoint (truncated or corrupt?)"
    return ("refused: it is pickled in a form torch's safe loader does not accept; save it with torch.save "
            "and its default pickle protocol")


def pickled_imports(path):
    """The globals ("module.name") that the pickles of a checkpoint file import -> set, or None when the
    file holds no complete pickle. A torch.save zip file keeps its pickle in <archive>/data.pkl; any
    other file is read as pickles one after another (the legacy format, or a bare pickle)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist() if info.filename.rsplit("/", 1)[-1] == "data.pkl"]
                data = b"".join(archive.read(info) for info in members if info.file_size <= MAX_PICKLE_BYTES)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_PICKLE_BYTES)
    except Exception:  # noqa: BLE001 - a damaged zip fails in zipfile or zlib in many ways: no pickle to read
        return None
    stream, imports, complete = io.BytesIO(data), set(), False
    while stream.tell() < len(data):
        try:
            imports |= imports_of_one_pickle(stream)
        except ValueError:  # pickletools' error for an unknown opcode, a bad argument or a missing STOP
            break
        complete = True
    return imports if complete else None


def imports_of_one_pickle(stream):
    """The globals one pickle in stream imports, as "module.name", from its opcodes (pickletools.genops
    never runs anything). GLOBAL and INST name theirs; STACK_GLOBAL takes the two strings pushed before
    it, directly or from the memo. Raises ValueError when the pickle is malformed or ends early."""
    imports, memo, strings, top = set(), {}, deque(maxlen=2), None
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name in MEMO_PUTS:  # stores the top of the stack, leaves the stack as it is
            memo[len(memo) if name == "MEMOIZE" else arg] = top
            continue
        top = arg if name in STRING_PUSHES else memo.get(arg) if name in MEMO_GETS else None
        if top is not None:
            strings.append(top)
        if name in ("GLOBAL", "INST"):
            imports.add(arg.replace(" ", "."))
        elif name == "STACK_GLOBAL":
            imports.add(".".join(strings))
    return imports
