"""Episodes: C classes x K samples, the offset labels (x_t, y_{t-1}), instance numbers, label shuffling, seeds,
splits, and the two augmentations.

Most tests draw from a synthetic pool of random images, so that every step can be traced back to the exact
(character, drawing) it shows. Shapes: B episodes, T = C * K steps.
"""

import math

import pytest
import torch

import flmn_core
from flmn_core.data import episodes as episodes_module

CHARACTERS, DRAWINGS = 30, 20


@pytest.fixture(scope="module")
def pool():
    """[30, 20, 20, 20] random images: every image is unique and no image is a rotation of another."""
    return torch.rand(CHARACTERS, DRAWINGS, 20, 20, generator=torch.Generator().manual_seed(0))


def sample(images, batch_size=16, seed=0, **kwargs):
    return flmn_core.sample_episodes(images, batch_size, torch.Generator().manual_seed(seed), **kwargs)


def locate(steps, images):
    """The (character, drawing) of the pool that each step shows, bit for bit: steps [B, T, 20, 20],
    images [characters, drawings, 20, 20] -> two [B, T]; fails if a step is not in the pool."""
    where = {image.numpy().tobytes(): divmod(i, images.shape[1]) for i, image in enumerate(images.flatten(0, 1))}
    found = [where.get(step.numpy().tobytes()) for step in steps.flatten(0, 1)]
    assert None not in found, "a step shows an image that is not in the pool"
    character, drawing = torch.tensor(found).unbind(1)
    return character.reshape(steps.shape[:2]), drawing.reshape(steps.shape[:2])


# ---------------------------------------------------------------------------------------------------------
# Structure


@pytest.mark.parametrize("classes, samples", [(5, 10), (3, 1), (10, 5)])
def test_episode_structure(pool, classes, samples):
    """T = C*K; each label K times; prev_labels = one-hot of labels shifted by one (zeros at t = 0);
    instances 1..K in order of appearance."""
    batch = sample(pool, classes=classes, samples=samples)
    B, T = 16, classes * samples
    assert batch.images.shape == (B, T, 20, 20)
    assert batch.labels.shape == batch.instances.shape == (B, T)
    assert batch.prev_labels.shape == (B, T, classes)
    for b in range(B):
        labels = batch.labels[b].tolist()
        assert sorted(labels) == sorted(list(range(classes)) * samples)
        assert batch.prev_labels[b, 0].tolist() == [0.0] * classes
        for t in range(1, T):
            expected = [1.0 if c == labels[t - 1] else 0.0 for c in range(classes)]
            assert batch.prev_labels[b, t].tolist() == expected
        seen = {}
        for t, label in enumerate(labels):
            seen[label] = seen.get(label, 0) + 1
            assert batch.instances[b, t] == seen[label]
        assert all(count == samples for count in seen.values())


def test_a_label_is_one_character_with_distinct_drawings(pool):
    """Within an episode, steps with the same label show K different drawings of one character, and different
    labels are different characters."""
    batch = sample(pool, classes=5, samples=10)
    character, drawing = locate(batch.images, pool)
    for b in range(batch.labels.shape[0]):
        of_label = {}
        for label, c, d in zip(batch.labels[b].tolist(), character[b].tolist(), drawing[b].tolist()):
            of_label.setdefault(label, []).append((c, d))
        assert len({pairs[0][0] for pairs in of_label.values()}) == 5  # five distinct characters
        for pairs in of_label.values():
            assert len({c for c, _ in pairs}) == 1
            assert len({d for _, d in pairs}) == 10


def test_labels_are_shuffled_in_every_episode(pool):
    """With only 5 characters to draw from, every episode uses the same 5, but which label each gets, and
    the order of the steps, changes from episode to episode."""
    batch = sample(pool, batch_size=64, classes=5, samples=4, characters=[0, 1, 2, 3, 4])
    character = locate(batch.images, pool)[0]
    mappings = set()
    for b in range(64):
        mapping = dict(zip(character[b].tolist(), batch.labels[b].tolist()))
        assert sorted(mapping) == [0, 1, 2, 3, 4]
        mappings.add(tuple(mapping[c] for c in range(5)))
    assert len(mappings) >= 20  # of 120 possible; 64 uniform draws give about 50 distinct
    for c in range(5):  # every character gets every label somewhere
        assert {m[c] for m in mappings} == set(range(5))
    assert len({tuple(row) for row in batch.labels.tolist()}) == 64


def test_same_seed_same_episodes(pool):
    first, again, other = sample(pool, seed=7), sample(pool, seed=7), sample(pool, seed=8)
    for field in flmn_core.Episodes._fields:
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    assert not torch.equal(first.images, other.images)
    assert not torch.equal(first.labels, other.labels)


def test_characters_are_restricted_to_the_split(pool):
    allowed = [2, 5, 11, 17, 23, 29]
    batch = sample(pool, batch_size=32, characters=torch.tensor(allowed))
    used = set(locate(batch.images, pool)[0].flatten().tolist())
    assert used == set(allowed)


def test_test_split_episodes_show_only_test_characters(omniglot):
    """On the real data: every step of a test-split episode is one of the 414 test characters' drawings."""
    test = flmn_core.split_indices("test")
    batch = sample(omniglot.images, batch_size=4, characters=test)
    character = locate(batch.images, omniglot.images[test])[0]  # index into the test characters
    assert len(set(character.flatten().tolist())) >= 5
    # No step image is also an image of a training or validation character.
    training_images = omniglot.images[: flmn_core.data.sources.TRAIN_CHARACTERS].flatten(0, 1)
    seen_in_training = {image.numpy().tobytes() for image in training_images}
    assert not any(step.numpy().tobytes() in seen_in_training for step in batch.images.flatten(0, 1))


def test_impossible_requests_are_refused(pool):
    with pytest.raises(ValueError, match="cannot draw 6 classes"):
        sample(pool, classes=6, characters=[0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="cannot draw 5 classes x 21 samples"):
        sample(pool, samples=21)
    with pytest.raises(ValueError, match="raw_images"):
        sample(pool, augment=True)


# ---------------------------------------------------------------------------------------------------------
# Augmentation


@pytest.fixture(scope="module")
def raw_subset(data_dir, flmn_cache_dir):
    """(images [8, 20, 20, 20], raw [8, 20, 105, 105]) of the first 8 Omniglot characters; the full raw
    tensor (360 MB) is dropped at once."""
    data, raw = flmn_core.load_omniglot(data_dir, raw=True, download=False)
    return data.images[:8].clone(), raw[:8].clone()


def centre_of_mass(images):
    """[..., 20, 20] -> [..., 2] the (row, column) centre of the ink."""
    grid = torch.arange(20, dtype=images.dtype)
    mass = images.sum((-2, -1))
    return torch.stack([(images.sum(-1) * grid).sum(-1) / mass, (images.sum(-2) * grid).sum(-1) / mass], -1)


def test_augment_without_rotation_or_shift_is_the_plain_image(raw_subset):
    """The augmentation path (105 x 105 -> affine -> area filter) reproduces the preprocessed images when the
    random transform is the identity: it uses the same downscaling as everything else."""
    images, raw = raw_subset
    plain = sample(images, batch_size=4, seed=3)
    augmented = sample(images, batch_size=4, seed=3, raw_images=raw, augment=True, max_rotation=0.0, max_shift=0.0)
    assert torch.equal(plain.labels, augmented.labels)
    torch.testing.assert_close(augmented.images, plain.images, atol=1e-5, rtol=0)


def test_augment_moves_the_ink_within_the_papers_bounds(raw_subset):
    """Experiment II: every image is rotated (|angle| <= pi/16) and shifted (|dx|, |dy| <= 10 px of 105) before
    downscaling. Same seed, same episode: labels and shapes stay, images change, ink stays in [0, 1] and
    mostly in the frame, and the ink's centre moves no further than the bounds allow."""
    images, raw = raw_subset
    plain = sample(images, batch_size=4, seed=3)
    augmented = sample(images, batch_size=4, seed=3, raw_images=raw, augment=True)
    assert torch.equal(plain.labels, augmented.labels) and torch.equal(plain.instances, augmented.instances)
    assert augmented.images.shape == plain.images.shape == (4, 50, 20, 20)
    assert augmented.images.min() >= 0 and augmented.images.max() <= 1
    changed = (augmented.images - plain.images).abs().amax((-2, -1)) > 0.05
    assert changed.float().mean() > 0.95
    ratio = augmented.images.sum((-2, -1)) / plain.images.sum((-2, -1))
    assert ((ratio > 0.7) & (ratio < 1.3)).all()
    before, after = centre_of_mass(plain.images), centre_of_mass(augmented.images)
    moved = (after - before).norm(dim=-1)
    centre = torch.tensor([9.5, 9.5])
    # A rotation by up to pi/16 about the centre moves a point at radius r by at most 2 sin(pi/32) r; the shift
    # adds at most 10 sqrt(2) px of 105, i.e. 10 sqrt(2) * 20/105 px here; 0.5 px for interpolation.
    bound = 2 * math.sin(math.pi / 32) * (before - centre).norm(dim=-1) + 10 * math.sqrt(2) * 20 / 105 + 0.5
    assert (moved <= bound).all()
    assert moved.mean() > 0.3  # the images really moved


def test_augmented_episodes_are_reproducible(raw_subset):
    images, raw = raw_subset
    first = sample(images, batch_size=2, seed=5, raw_images=raw, augment=True)
    again = sample(images, batch_size=2, seed=5, raw_images=raw, augment=True)
    assert torch.equal(first.images, again.images)


def test_widen_strokes_widens_each_image_by_at_most_its_bound():
    """A line one pixel wide, widened by U[0, 7] px of the 105 x 105 frame: at a 42 x 42 copy each image's line
    is 1 + 2r px wide with r in [0, 7 * 42/105 / 2] (partial ink on the outer ring), and r spreads over that range."""
    line = torch.zeros(1, 200, 42, 42)
    line[..., 10:32, 20] = 1
    widened = episodes_module._widen_strokes(line, 7.0, torch.Generator().manual_seed(0))
    width = widened[0, :, 21].sum(-1)  # a row across the line, away from its ends
    widest = 1 + 7.0 * 42 / 105
    assert widened.min() >= 0 and widened.max() <= 1
    assert ((width >= 1) & (width <= widest + 1e-5)).all()
    assert width.min() < 1.2 and width.max() > widest - 0.2
    assert torch.equal(widened[0, :, :, :18], line[0, :, :, :18])  # nothing beyond the second ring (r <= 1.4)


def test_dilate_is_a_three_by_three_max_pool():
    images = torch.rand(2, 3, 17, 17, generator=torch.Generator().manual_seed(1))
    expected = torch.nn.functional.max_pool2d(images.reshape(6, 1, 17, 17), 3, stride=1, padding=1)
    assert torch.equal(episodes_module._dilate(images), expected.reshape(2, 3, 17, 17))


def test_widened_episodes_keep_their_labels_and_gain_ink(raw_subset):
    """Same seed, same episode: the labels stay and every image holds at least the ink it had (up to the
    interpolation of a moved image's edges), more on average."""
    images, raw = raw_subset
    plain = sample(images, batch_size=4, seed=3, raw_images=raw, augment=True)
    widened = sample(images, batch_size=4, seed=3, raw_images=raw, augment=True, widen_strokes=7.0)
    assert torch.equal(plain.labels, widened.labels)
    ratio = widened.images.sum((-2, -1)) / plain.images.sum((-2, -1))
    assert ratio.min() > 0.8 and ratio.mean() > 1.3
    assert torch.equal(widened.images, sample(images, batch_size=4, seed=3, raw_images=raw, augment=True,
                                              widen_strokes=7.0).images)


def test_rotate_classes_turns_each_class_by_quarter_turns(pool):
    """Each class of an episode is shown rotated by one fixed multiple of 90 degrees; all four occur."""
    plain = sample(pool, batch_size=16, seed=4)
    rotated = sample(pool, batch_size=16, seed=4, rotate_classes=True)
    assert torch.equal(plain.labels, rotated.labels)
    turns_used = set()
    for b in range(16):
        turns_of_label = {}
        for t, label in enumerate(rotated.labels[b].tolist()):
            matches = [k for k in range(4) if torch.equal(rotated.images[b, t], torch.rot90(plain.images[b, t], k))]
            assert len(matches) == 1
            assert turns_of_label.setdefault(label, matches[0]) == matches[0]
        turns_used |= set(turns_of_label.values())
    assert turns_used == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------------------
# A label space larger than the episode's classes


def test_an_episode_of_c_classes_uses_c_of_the_l_labels_afresh_each_episode(pool):
    batch = sample(pool, batch_size=64, seed=4, classes=3, samples=4, labels=15)
    assert batch.prev_labels.shape == (64, 12, 15) and batch.labels.max() < 15
    used = [set(episode.tolist()) for episode in batch.labels]
    assert all(len(labels) == 3 for labels in used)  # three classes, three labels
    assert len({frozenset(labels) for labels in used}) > 30  # drawn afresh: many different label sets
    assert len(set().union(*used)) == 15  # every label gets used
    character, _ = locate(batch.images, pool)
    for labels, characters in zip(batch.labels, character):  # one label per class, one class per label
        pairs = set(zip(labels.tolist(), characters.tolist()))
        assert len(pairs) == 3 == len({label for label, _ in pairs}) == len({c for _, c in pairs})
    assert torch.equal(batch.instances, flmn_core.data.episodes.instance_numbers(batch.labels, 15))


def test_as_many_labels_as_classes_draws_the_episodes_it_always_drew(pool):
    plain, labelled = sample(pool, seed=2), sample(pool, seed=2, labels=5)
    assert all(torch.equal(a, b) for a, b in zip(plain, labelled))


def test_more_classes_than_labels_is_refused(pool):
    with pytest.raises(ValueError, match="at least 6 labels"):
        sample(pool, classes=6, labels=5)
