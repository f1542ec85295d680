"""The example episode in assets/ (flmn_core.interactive.examples): the committed file is what the generator makes, so
it cannot go stale, and it is an episode as described: 5 generated characters, each taught 3 or 4 times."""

import numpy as np

from flmn_core.interactive.episode_file import read_episode_file
from flmn_core.interactive.examples import CLASSES, EXAMPLE_PATH, example_episode


def test_the_committed_example_episode_is_what_the_generator_makes():
    committed = read_episode_file(EXAMPLE_PATH)
    made = read_episode_file(example_episode().to_bytes())
    assert committed.classes == made.classes == CLASSES
    assert committed.class_names == made.class_names
    np.testing.assert_array_equal(committed.labels, made.labels)
    np.testing.assert_array_equal(committed.images, made.images)  # rerun `flmn example` if not
    assert committed.recorded == made.recorded == {}  # no predictions: the app replays it with its models


def test_the_example_teaches_each_character_3_or_4_times():
    episode = example_episode()
    counts = np.bincount(episode.labels, minlength=CLASSES)
    assert 15 <= len(episode) <= 20 and counts.min() >= 3 and counts.max() <= 4
    assert len({image.numpy().tobytes() for image in episode.images}) == len(episode)  # every drawing its own
