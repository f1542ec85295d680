"""Label-shuffle replay (flmn_core.interactive.shuffle): the shipped models bind labels in memory, so replaying the same
drawings with permuted labels gives the permuted predictions and the same per-instance accuracy; a model
that remembered characters instead fails the same check, and so would a replay that forgot to permute."""

import pytest
import torch

from flmn_core import build_model, load_model, sample_episodes, split_indices
from flmn_core.data.episodes import offset_labels
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.interactive.shuffle import (
    derangement,
    label_shuffle_replay,
    permute_labels,
)
from flmn_core.model import zoo

EPISODES = 100  # 500 steps per instance: the accuracies compared are within about ±3 points of their mean
SHIPPED = ("flmn-exp1", "mann-exp1")


def glyph_episodes():
    """100 episodes of 5 generated characters x 10 drawings (no data needed)."""
    return sample_episodes(sample_glyph_pool(40, 10, seed=0), EPISODES, torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def omniglot_episodes(omniglot):
    """100 episodes of Omniglot's held-out test characters."""
    return sample_episodes(omniglot.images, EPISODES, torch.Generator().manual_seed(1),
                           characters=split_indices("test"))


def later_accuracy(counts):
    """(correct, total) per instance -> accuracy (%) over the 2nd instance and later."""
    correct, total = counts
    return 100 * sum(correct[1:]) / sum(total[1:])


@pytest.mark.parametrize("seed", range(6))
def test_a_derangement_moves_every_label_and_is_reproducible(seed):
    permutation = derangement(5, seed)
    assert sorted(permutation) == list(range(5)) and all(permutation[c] != c for c in range(5))
    assert derangement(5, seed) == permutation


def check_labels_are_bound_not_remembered(model, episodes):
    permutation = derangement(model.config.classes, seed=3)
    replay = label_shuffle_replay(model, episodes.images, episodes.labels, permutation)
    # The replay's labels are the permuted ones at every step, so a replay that forgot to permute fails here ...
    assert torch.equal(replay.shuffled_labels, permute_labels(episodes.labels, permutation))
    assert bool((replay.shuffled_labels != episodes.labels).all())
    # ... and here: unpermuted, the predictions would stay the same, which the derangement makes wrong.
    assert replay.agreement() > 0.75, replay.agreement()
    original, shuffled = replay.instance_accuracy()
    assert original[1] == shuffled[1]  # the same steps at each instance
    assert abs(later_accuracy(original) - later_accuracy(shuffled)) < 3
    second = [100 * c[1] / t[1] for c, t in (original, shuffled)]
    assert abs(second[0] - second[1]) < 5, second  # one-shot recognition holds
    assert later_accuracy(original) > 60  # and the model does recognise (a useless model would agree trivially)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_bind_labels_on_generated_characters(name):
    check_labels_are_bound_not_remembered(load_model(zoo.weights_path(name)), glyph_episodes())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_bind_labels_on_omniglot_test_characters(name, omniglot_episodes):
    check_labels_are_bound_not_remembered(load_model(zoo.weights_path(name)), omniglot_episodes)


class CharacterMemoriser(torch.nn.Module):
    """A 'model' that has learned the characters of one episode with their labels there: it predicts the
    label that the nearest of those drawings had, whatever labels it is fed."""

    def __init__(self, images, labels, classes):
        super().__init__()
        self.images, self.labels = images.flatten(1), labels
        self.config = type("Config", (), {"classes": classes})()

    def forward(self, images, prev_labels):
        nearest = torch.cdist(images.flatten(2), self.images[None].expand(images.shape[0], -1, -1)).argmin(-1)
        return torch.nn.functional.one_hot(self.labels[nearest], self.config.classes).float() * 10


def test_a_model_that_remembers_characters_fails_the_check():
    episode = glyph_episodes()
    images, labels = episode.images[0], episode.labels[0]
    replay = label_shuffle_replay(CharacterMemoriser(images, labels, 5), images, labels, derangement(5, 3))
    original, shuffled = replay.instance_accuracy()
    assert later_accuracy(original) == 100 and later_accuracy(shuffled) == 0 and replay.agreement() == 0
    with pytest.raises(AssertionError):
        check_labels_are_bound_not_remembered(CharacterMemoriser(images, labels, 5), episode)


def test_one_episode_without_a_batch_dimension_and_bad_permutations():
    model = load_model(zoo.weights_path("flmn-exp1"))
    episode = glyph_episodes()
    one = label_shuffle_replay(model, episode.images[0], episode.labels[0], (1, 2, 3, 4, 0))
    batch = label_shuffle_replay(model, episode.images[:2], episode.labels[:2], (1, 2, 3, 4, 0))
    torch.testing.assert_close(one.shuffled_probabilities[0], batch.shuffled_probabilities[0], rtol=1e-5, atol=1e-6)
    for bad in ((0, 1, 2, 3), (0, 0, 1, 2, 3)):
        with pytest.raises(ValueError, match="permutation"):
            label_shuffle_replay(model, episode.images[0], episode.labels[0], bad)


def test_a_model_of_more_labels_replays_an_episode_of_fewer():
    """C = 3 labels on a model of L = 5: the replay feeds one-hots of 5, exactly as the forward pass on the
    permuted labels does, and a prediction of a label not in use is left as it is when comparing."""
    torch.manual_seed(0)
    model = build_model("flmn", classes=5, controller_size=12, memory_rows=8, word_size=6).eval()
    images, labels = torch.rand(9, 20, 20), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    replay = label_shuffle_replay(model, images, labels, (1, 2, 0))
    with torch.no_grad():
        shuffled = torch.softmax(model(images[None], offset_labels(torch.tensor([[1, 2, 0] * 3]), 5)), -1)
    torch.testing.assert_close(replay.shuffled_probabilities, shuffled)
    assert 0.0 <= replay.agreement() <= 1.0
    with pytest.raises(ValueError, match="C <= 5"):
        label_shuffle_replay(model, images, labels, tuple(range(6)))
