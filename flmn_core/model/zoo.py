"""The pretrained checkpoints that ship in checkpoints/, and where their files live.

    checkpoints/<name>.pt                      the weights (flmn_core.load_model), with their TrainConfig
    checkpoints/<name>.md                      the model card (flmn_core.results.cards)
    checkpoints/results/<name>-<dataset>.json  flmn_core.training.evaluate's output (dataset: one of DATASETS), at 5
                                               classes; <name>-<dataset>-<C>way.json at C classes;
                                               <name>-omniglot-<C>way-<R>rows.json with a memory of R rows
    checkpoints/logs/<name>.jsonl              the training log (flmn_core.training.runlog), for the curves
    checkpoints/results/select/<name>-mnist.json  miniMNIST on the half of MNIST's digits kept for choices, which
                                               no reported figure uses: what chose the miniMNIST checkpoint (and
                                               its stroke widening: <probe>-mnist.json, a probe's best.pt)
    checkpoints/logs/probes/<probe>.jsonl      the logs of the short runs that chose a variant's design
    checkpoints/results/probes/<probe>-omniglot[-rot<D>].json  a follow-up's held-out test (test images turned
                                               by up to D degrees), for the variant's card

Every path function takes an optional root: another folder laid out the same way (a test's, or
`--checkpoint-dir`); without it, $FLMN_CHECKPOINT_DIR, else checkpoints/ beside flmn_core/.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

FOLDER = "checkpoints"  # the repository's folder of shipped checkpoints, as README and the cards name it
# What every shipped checkpoint is evaluated on (flmn_core.training.evaluate.DATASETS): held-out and zero-shot.
DATASETS = ("omniglot", "mnist", "mnist-normalised")
PAPERS_CLASSES = 5  # the papers' Tables 1 and 2: episodes of 5 classes
MNIST_CLASSES = 10  # miniMNIST has ten digits: no episode of it has more classes
MAX_WEIGHTS_BYTES = 10 * 2**20  # the repository keeps shipped weights to a few MB each
# How a model card states its weights' digest, in its first table (flmn_core.results.cards writes it).
CARD_SHA256 = re.compile(r"sha256 `([0-9a-f]{64})`")


@dataclass(frozen=True)
class Shipped:
    """One shipped checkpoint: its file stem, model ("flmn" or "mann"), experiment ("I" or "II", as its
    TrainConfig; publish checks that they agree), a one-line description, the class counts C of the episodes
    its results are measured at (a model of L labels serves any C <= L), and the memory sizes (the config's
    memory_rows; no weight depends on it) its Omniglot result at the largest C is also measured with, for its
    card's table of what the memory's size does."""

    name: str
    model: str
    experiment: str
    description: str
    classes: tuple = (PAPERS_CLASSES,)
    memory_probe: tuple = ()
    follows: str = ""  # a shipped checkpoint whose card's test table it joins (a run tried after that one)


# In the order the app's sidebar and the results tables list them: the sidebar offers the first of each
# model as its default. Adding a checkpoint is one line here, then `flmn publish`.
CHECKPOINTS = (
    Shipped("flmn-conv", "flmn", "II", "`flmn-retrieve` with a small convolutional network between the image and "
                                       "the controller (the app's default FLMN)"),
    Shipped("flmn-pens", "flmn", "II", "`flmn-conv` trained on 200k episodes more with its drawings' strokes widened "
                                       "at random (`--widen-strokes 7`), for pens wider than Omniglot's"),
    Shipped("flmn-retrieve", "flmn", "II", "FLMN variant beyond the paper whose read finds the rows of earlier "
                                           "drawings of the class; its controller sees the image's pixels"),
    Shipped("flmn-exp1", "flmn", "I", "FLMN as the paper writes it, Experiment I (no augmentation)"),
    Shipped("flmn-exp1-random", "flmn", "I", "`flmn-exp1`'s recipe on a split whose 414 test characters are drawn "
                                             "at random from all 50 alphabets (`--split random`), so that they "
                                             "share alphabets with the training characters",
            follows="flmn-exp1"),
    Shipped("mann-exp1", "mann", "I", "MANN with one read head (the FLMN paper's baseline), Experiment I"),
    Shipped("flmn-exp2", "flmn", "II", "FLMN as the paper writes it, Experiment II (rotation and translation)"),
    Shipped("mann-exp2", "mann", "II", "MANN with one read head, Experiment II"),
    Shipped("mann4-santoro", "mann", "II", "MANN with four read heads, trained as Santoro et al.: random rotations "
                                           "and shifts, and characters turned by 90/180/270 degrees as new classes"),
    Shipped("flmn-15", "flmn", "II", "`flmn-conv` with 15 labels and memories of 128 rows, trained on episodes of 2 "
                                     "to 15 classes: one checkpoint for any class count up to 15",
            classes=(5, 10, 15), memory_probe=(128, 512)),
    Shipped("mann-15", "mann", "II", "`mann4-santoro` with 15 labels (Santoro et al.'s 128 x 40 memory, 4 read "
                                     "heads), trained on episodes of 2 to 15 classes", classes=(5, 10, 15)),
)


@dataclass(frozen=True)
class Probe:
    """A training run that decided part of a shipped variant's design (PROBES) or was tried after it, toward
    the targets it misses (FOLLOW_UPS); its log ships in logs/probes/ and the variant's card tabulates it."""

    name: str
    variant: str  # the shipped checkpoint it led to, or that it tried to improve on
    change: str  # what it tried: relative to the probe before it (PROBES), to the variant's run (FOLLOW_UPS)
    # Test rotations (degrees; 0: as they are) its best.pt is also evaluated at on its held-out test characters
    # by `flmn publish --probe` (results/probes/), where its validation alone cannot answer what it asks.
    tested: tuple = ()
    # Whether its best.pt is also evaluated on miniMNIST's digits kept for choices (results/select/): a run that
    # tries a choice made for MNIST, which Omniglot's validation cannot make.
    selects: bool = False


# The shipped checkpoint each variant's design started from (its card's first row).
DESIGN_BASELINE = {"flmn-retrieve": "flmn-exp1", "flmn-conv": "flmn-retrieve", "flmn-pens": "flmn-conv"}
PROBES = (
    Probe("probe-mask", "flmn-retrieve", "the paper's FLMN + read before the write, learned key strength, empty "
                                         "rows take no read"),
    Probe("probe-aux", "flmn-retrieve", "the above + retrieval loss (weight 1): read weight belongs on the rows "
                                        "of the class"),
    Probe("probe-null", "flmn-retrieve", "the above + null row: a read may land on nothing"),
)
FOLLOW_UPS = (
    Probe("flmn-w80", "flmn-retrieve", "feature and label memory rows of 80 numbers instead of 40"),
    Probe("flmn-h300", "flmn-retrieve", "a controller of 300 LSTM units instead of 200"),
    Probe("flmn-retrieve-upright", "flmn-retrieve", "continued from the checkpoint without the rotated classes, "
                                                    "at a constant learning rate of 1e-4"),
    # Toward the paper's 85.6% at the 2nd instance of Experiment I: the FLMN authors' released code
    # (docs/training.md); the split, the other candidate, is the shipped flmn-exp1-random.
    Probe("authors-2017", "flmn-exp1", "the FLMN authors' 2017 code (`--recipe authors-2017`): batches of 5, the "
                                       "softmax applied twice, rotations of at most 0.2 degrees and no shift, the "
                                       "label memory never cleared", tested=(0, 10)),
    # Toward flmn-15's 10th instance at 15 classes (97): more training on the longest episodes.
    Probe("flmn-15-late", "flmn-15", "continued from this checkpoint's run at episode 460,000 on episodes of 10 "
                                     "to 15 classes (`--min-classes 10`) at a constant learning rate of 1e-4"),
    # The stroke widening, chosen again on the digits kept for choices: flmn-pens' command (continued from
    # flmn-conv at episode 360,000) with only --widen-strokes changed, each stopped at its validation at 400,000.
    Probe("widen-7", "flmn-pens", "this checkpoint's own command (`--widen-strokes 7`) stopped at episode 400,000: "
                                  "the control for the runs below", selects=True),
    Probe("widen-10", "flmn-pens", "`--widen-strokes 10`, stopped at episode 400,000", selects=True),
    Probe("widen-14", "flmn-pens", "`--widen-strokes 14`, stopped at episode 400,000", selects=True),
    Probe("widen-10-520k", "flmn-pens", "`widen-10` continued to episode 520,000 (`--stop-after 520000`)",
          selects=True),
)


def entry(name):
    """The Shipped entry of a checkpoint name; ValueError naming the known ones."""
    for shipped in CHECKPOINTS:
        if shipped.name == name:
            return shipped
    raise ValueError(f"unknown checkpoint name {name!r}; expected one of {', '.join(c.name for c in CHECKPOINTS)}")


def checkpoint_dir(root=None):
    """The folder of shipped checkpoints: root if given, else $FLMN_CHECKPOINT_DIR, else checkpoints/ beside
    flmn_core/."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("FLMN_CHECKPOINT_DIR") or Path(__file__).resolve().parents[2] / FOLDER)


def weights_path(name, root=None):
    return checkpoint_dir(root) / f"{name}.pt"


def card_path(name, root=None):
    return checkpoint_dir(root) / f"{name}.md"


def result_path(name, dataset, root=None, classes=PAPERS_CLASSES, memory_rows=None):
    way = "" if classes == PAPERS_CLASSES else f"-{classes}way"
    rows = "" if memory_rows is None else f"-{memory_rows}rows"
    return checkpoint_dir(root) / "results" / f"{name}-{dataset}{way}{rows}.json"


def evaluations(shipped):
    """What a shipped checkpoint is evaluated on -> [(dataset, classes)]: every dataset at each of its class
    counts (miniMNIST's at most ten)."""
    return [(dataset, classes) for classes in shipped.classes for dataset in DATASETS
            if dataset == "omniglot" or classes <= MNIST_CLASSES]


def memory_probes(shipped):
    """The extra evaluations of a shipped checkpoint's memory_probe -> [(classes, memory_rows)]: Omniglot at
    its largest class count, once per memory size."""
    return [(max(shipped.classes), rows) for rows in shipped.memory_probe]


def log_path(name, root=None):
    return checkpoint_dir(root) / "logs" / f"{name}.jsonl"


def probe_log_path(name, root=None):
    return checkpoint_dir(root) / "logs" / "probes" / f"{name}.jsonl"


def selection_path(name, root=None):
    return checkpoint_dir(root) / "results" / "select" / f"{name}-mnist.json"


def probe_result_path(name, root=None, rotate=0):
    rotated = f"-rot{rotate:g}" if rotate else ""
    return checkpoint_dir(root) / "results" / "probes" / f"{name}-omniglot{rotated}.json"


def probe(name):
    """The Probe entry of a probe's name (PROBES, FOLLOW_UPS); ValueError naming the known ones."""
    for run in PROBES + FOLLOW_UPS:
        if run.name == name:
            return run
    raise ValueError(f"unknown probe {name!r}; expected one of {', '.join(p.name for p in PROBES + FOLLOW_UPS)}")


def card_sha256(name, root=None):
    """The sha256 that a shipped checkpoint's model card states for its weights -> hex digest, or None
    when there is no card (a folder of checkpoints without cards, a test's) or it states none."""
    try:
        found = CARD_SHA256.search(card_path(name, root).read_text(errors="replace"))
    except OSError:
        return None
    return found.group(1) if found else None


def default(model):
    """The checkpoint the app shows first for a model kind ("flmn" or "mann"): its first in CHECKPOINTS."""
    return next(c for c in CHECKPOINTS if c.model == model)


def available(root=None):
    """The shipped checkpoints whose weights file exists, in CHECKPOINTS order."""
    return [c for c in CHECKPOINTS if weights_path(c.name, root).is_file()]
