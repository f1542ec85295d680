"""The example episode in assets/: an episode a person can load without drawing one (the Teach page's
"Load the example episode"), also the episode of the README's screenshots.

Its characters are the project's generated ones (flmn_core.data.glyphs), never Omniglot's: the dataset is not
the project's to ship, nor any image made from it. Five characters, each drawn 3 or 4 times by different
drawers, in a shuffled order: 18 steps, character c taught with label c.

    flmn example                 # (re)writes assets/example-episode.npz
    episode = example_episode()                  # the same episode, without models' predictions

The file holds no model's predictions: the app replays the episode with the checkpoints chosen, so the
file does not go stale when a checkpoint is retrained (tests/test_examples.py checks it against this code).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.data.normalise import preprocess
from flmn_core.interactive.episode import InteractiveEpisode

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "assets" / "example-episode.npz"
CLASSES = 5  # the shipped checkpoints' C
DRAWINGS = (4, 4, 4, 3, 3)  # drawings of each character: 18 steps
SEED = 0  # of the alphabet and the order; its five characters look unlike one another


def example_alphabet():
    """The example's characters -> list of CLASSES glyphs.Character, character c has label c."""
    return make_alphabet(CLASSES, SEED)


def example_steps():
    """The example's steps -> (labels [T] int, drawer seeds [T] int): a shuffled order of the characters,
    each drawing by its own drawer."""
    rng = np.random.default_rng([SEED, 1])  # a stream apart from the alphabet's
    labels = rng.permutation(np.repeat(np.arange(CLASSES), DRAWINGS))
    return labels, rng.integers(0, 2**32, size=len(labels))


def example_episode():
    """The example episode -> InteractiveEpisode of CLASSES classes, no model run yet (sync adds them)."""
    alphabet = example_alphabet()
    labels, drawers = example_steps()
    images = torch.stack([preprocess(render(alphabet[label], int(drawer))) for label, drawer in zip(labels, drawers)])
    return InteractiveEpisode.from_sequence(images, labels, CLASSES)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="flmn example", description="Write the example episode file (atomically).")
    parser.add_argument("--out", type=Path, default=EXAMPLE_PATH, help="where to write it (default: %(default)s)")
    args = parser.parse_args(argv)
    episode = example_episode()
    episode.save(args.out)  # atomic: flmn_core.files.atomic_open
    print(f"wrote {args.out}: {len(episode)} steps of {episode.classes} generated characters")

