"""What `flmn train --resume` continues from: the training state of a run's last.pt, checked entry by entry
before any of it is used, so that a damaged or edited file is refused with the entry named and kept as it is.

    training  {"optimizer": the optimizer's state_dict, "generator": the episode sampler's RNG state,
               "episode": int, "best": float, "cpu_seconds": float, "wall_seconds": float,
               "config": the run's TrainConfig as a dict}

load_checkpoint has checked the rest of the file (the model's config and weights); each function here raises
ValueError with what is wrong, in the person's terms.
"""

import math

import torch

from flmn_core.model.checkpoint import model_config, shown
from flmn_core.training.config import TrainConfig

GENERATOR_STATE = torch.Generator().get_state()  # what a CPU generator's state looks like: its dtype and size
COUNTERS = {  # name -> (lowest value, whether the entry may be absent); all are real numbers
    "episode": (0, False),
    "best": (-1.0, False),  # -1: no validation yet
    "cpu_seconds": (0.0, False),
    "wall_seconds": (0.0, True),  # absent in runs begun before it was kept
}


def resume_config(payload, path):
    """The TrainConfig that a run's last.pt (at path, checked by load_checkpoint) continues -> TrainConfig,
    whose model must be the one of the file's weights."""
    training = payload.get("training")
    if not isinstance(training, dict) or "config" not in training:
        raise ValueError("it holds no training state to continue from (a checkpoint of weights only?)")
    try:
        config = TrainConfig.from_dict(training["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"its training config is not valid: {error}") from error
    if config.model_name != payload["model"] or config.model != model_config(payload["model"], payload["config"], path):
        raise ValueError(f"its training config describes another model than the one its weights are of "
                         f"({config.model_name}: {config.model})")
    return config


def check_training_state(training, optimizer):
    """Refuse a training state that the run could not continue from exactly: counters that are not real
    numbers in range, a generator state that is not one, or an optimizer state that does not fit this
    run's optimizer (its groups, settings, and a tensor of each parameter's shape and dtype)."""
    for name, (lowest, optional) in COUNTERS.items():
        if name not in training and optional:
            continue
        value = training.get(name)
        whole = name == "episode"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) \
                or not math.isfinite(value) or value < lowest:
            kind = "whole number" if whole else "number"
            raise ValueError(f"its {name} is {value!r}, not a {kind} of at least {lowest}")
    check_generator_state(training.get("generator"))
    check_optimizer_state(training.get("optimizer"), optimizer)


def check_generator_state(state):
    """The episode sampler's RNG state: a uint8 tensor that a CPU generator takes."""
    if not isinstance(state, torch.Tensor) or state.dtype != GENERATOR_STATE.dtype \
            or state.shape != GENERATOR_STATE.shape or state.device.type != "cpu":
        raise ValueError(f"its generator state is not a CPU generator's ({describe(state)})")
    try:
        torch.Generator().set_state(state)
    except RuntimeError as error:
        raise ValueError(f"its generator state is not a CPU generator's ({error})") from error


def check_optimizer_state(state, optimizer):
    """An optimizer state_dict that this run's optimizer can take: the same parameter groups with the
    same settings (the learning rate aside, which the schedule sets at every step), and per parameter
    only finite tensors: a scalar step count, the rest of the parameter's shape and dtype."""
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict) \
            or not isinstance(state.get("param_groups"), list):
        raise ValueError(f"its optimizer state is {describe(state)}, not an optimizer's state_dict")
    groups = optimizer.state_dict()["param_groups"]
    if len(state["param_groups"]) != len(groups):
        raise ValueError(f"its optimizer state has {len(state['param_groups'])} parameter groups, this run's "
                         f"optimizer {len(groups)}")
    for saved, own in zip(state["param_groups"], groups):
        if not isinstance(saved, dict):
            raise ValueError(f"its optimizer state has a parameter group {describe(saved)}")
        for key, value in own.items():
            if key != "lr" and key in saved and saved[key] != value:
                raise ValueError(f"its optimizer's {key} is {describe(saved[key])}, this run's is {value!r}")
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entries in state["state"].items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(parameters) \
                or not isinstance(entries, dict):
            raise ValueError(f"its optimizer state holds an entry {describe(index)} for no parameter of the model")
        for key, value in entries.items():
            shape = () if key == "step" else parameters[index].shape
            if not isinstance(value, torch.Tensor) or value.device.type != "cpu" \
                    or value.dtype != parameters[index].dtype or value.shape != shape \
                    or not torch.isfinite(value).all():
                raise ValueError(f"its optimizer's {key} of parameter {index} is {describe(value)}, not finite "
                                 f"{parameters[index].dtype} of shape {list(shape)}")


def describe(value):
    """A short description of a value for a message; a tensor by its dtype, shape and device."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)} on {value.device.type}"
    return shown(value)
