"""Checkpoint files: one file per model, safe to load, written atomically.

A checkpoint is a plain dict that `torch.load(path, weights_only=True)` can read (no pickled code):
    format_version  int, FORMAT_VERSION
    model           "flmn" or "mann"
    config          the model's config as a plain dict: build_model(model, **config) rebuilds it
    state_dict      the weights
    step            training episodes seen
    metrics         a dict of plain values (accuracies, CPU time; shipped files also hold train_args, the
                    run's arguments, written by flmn_core.publish)
    training        optional: what `--resume` needs (optimizer state, RNG state, the run's TrainConfig)
    train_config    optional: the TrainConfig that trained it, as a plain dict (`train --config` reads it)
"""

import pickle
from pathlib import Path

import torch

from .files import atomic_open
from .models import MODELS, build_model, model_name

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model", "config", "state_dict", "step", "metrics")


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
        payload["training"] = training
    if train_config is not None:
        payload["train_config"] = train_config
    atomic_torch_save(payload, path)


def atomic_torch_save(obj, path):
    """torch.save to a temporary file beside path, then rename it over path."""
    with atomic_open(path) as f:
        torch.save(obj, f)


def load_checkpoint(path):
    """Read and check a checkpoint file -> its dict. Raises CheckpointError for a missing, empty,
    truncated, corrupt or foreign file, or one that would need to unpickle code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(error)
        if detail.startswith("Unsupported global"):
            raise CheckpointError(path, f"refused: it would need to unpickle code or objects that are not plain data ({detail})") from error
        raise CheckpointError(path, f"not a readable checkpoint (truncated or corrupt?): {detail}") from error
    except Exception as error:  # noqa: BLE001 - garbage makes the unpickler fail in many ways (IndexError, KeyError, ...)
        raise CheckpointError(path, f"not a readable checkpoint (truncated or corrupt?): {error}") from error
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise CheckpointError(path, f"not an FLMN project checkpoint (expected a dict with {', '.join(REQUIRED_KEYS)})")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(path, f"format version {payload['format_version']!r}, this code reads {FORMAT_VERSION}")
    if payload["model"] not in MODELS:
        raise CheckpointError(path, f"unknown model {payload['model']!r}; expected one of {sorted(MODELS)}")
    return payload


def _unpickler_detail(error):
    """The useful part of torch's weights-only unpickler message: what it refused, without its advice."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return text.split(". Please use")[0].strip()


def model_from_checkpoint(payload, path="<checkpoint>"):
    """Build the model a checkpoint dict describes and load its weights -> model."""
    try:
        model = build_model(payload["model"], **payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        raise CheckpointError(path, f"its weights or config do not fit the {payload['model']} model: {error}") from error
    return model


def load_model(path):
    """Load a model from a checkpoint file, in eval mode. Raises CheckpointError when it cannot."""
    model = model_from_checkpoint(load_checkpoint(path), path)
    return model.eval()
