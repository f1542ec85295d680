"""The pretrained checkpoints that ship in checkpoints/, and where their results live.

    checkpoints/<name>.pt                      the weights (flmn_core.load_model)
    checkpoints/<name>.md                      the model card
    checkpoints/results/<name>-<dataset>.json  flmn_core.evaluate's output (dataset: omniglot, mnist)
    checkpoints/logs/<name>.jsonl              the training log (for the training curves)
"""

import os
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("omniglot", "mnist")


@dataclass(frozen=True)
class Shipped:
    """One shipped checkpoint: its file stem, model, experiment and a one-line description."""

    name: str
    model: str
    experiment: str
    description: str


# In the order the app's sidebar and the results table list them.
CHECKPOINTS = (
    Shipped("flmn-exp1", "flmn", "I", "FLMN as the paper writes it, Experiment I (no augmentation)"),
    Shipped("mann-exp1", "mann", "I", "MANN with one read head (the FLMN paper's baseline), Experiment I"),
    Shipped("flmn-exp2", "flmn", "II", "FLMN as the paper writes it, Experiment II (rotation and translation)"),
    Shipped("mann-exp2", "mann", "II", "MANN with one read head, Experiment II"),
    Shipped("mann4-exp1", "mann", "I", "MANN with four read heads, as Santoro et al. configured it, Experiment I"),
    Shipped("flmn-best", "flmn", "I", "FLMN variant beyond the paper: learned key strength and reading before the write (the best we made)"),
)


def checkpoint_dir():
    """The folder of shipped checkpoints: $FLMN_CHECKPOINT_DIR, else checkpoints/ beside flmn_core/."""
    return Path(os.environ.get("FLMN_CHECKPOINT_DIR") or Path(__file__).resolve().parents[1] / "checkpoints")


def weights_path(name):
    return checkpoint_dir() / f"{name}.pt"


def card_path(name):
    return checkpoint_dir() / f"{name}.md"


def result_path(name, dataset):
    return checkpoint_dir() / "results" / f"{name}-{dataset}.json"


def log_path(name):
    return checkpoint_dir() / "logs" / f"{name}.jsonl"


def available():
    """The shipped checkpoints whose weights file exists, in CHECKPOINTS order."""
    return [c for c in CHECKPOINTS if weights_path(c.name).is_file()]
