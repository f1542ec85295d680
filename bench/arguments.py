"""What the bench scripts' command lines share: argparse types that check a value where it is read, so that a
bad one (`--rounds 0`, a missing checkpoint, a data folder that is not there) ends in argparse's usage message
naming the option, never in a traceback minutes into a run."""

import argparse
import math
from pathlib import Path

from flmn_core.model.checkpoint import CheckpointError, load_checkpoint
from flmn_core.training.config import TrainConfig


def whole_number(low, high):
    """argparse type: a whole number from low to high."""
    def check(text):
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value
    return check


def positive_float(text):
    """argparse type: a finite number above 0."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def fraction(text):
    """argparse type: a number above 0 and at most 1 (an accuracy)."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1 (an accuracy of 1 is 100%), not {text}")
    return value


def checkpoint_file(text):
    """argparse type: a checkpoint file that loads (flmn_core.model.checkpoint) -> its path, as given."""
    try:
        load_checkpoint(text)
    except CheckpointError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def training_config_file(text):
    """argparse type: a checkpoint that holds the TrainConfig that trained it -> its path, as given."""
    try:
        TrainConfig.from_dict(load_checkpoint(text).get("train_config"))
    except CheckpointError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text} holds no usable training config ({error})") from error
    return text


def existing_file(text):
    """argparse type: a file that exists -> Path."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return Path(text)


def existing_folder(text):
    """argparse type: a folder that exists (a data folder, say) -> its path, as given."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return text
