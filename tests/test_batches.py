"""A data-parallel process's batches banked while it waits (flmn_core.data.batches.BankedBatches): which episodes
it trains on does not depend on when they were sampled, and its run's generator stands after the last one."""

import functools

import pytest
import torch

from flmn_core import sample_episodes
from flmn_core.data.batches import BankedBatches
from flmn_core.data.glyphs import sample_glyph_pool

SIZE, ROOM = 3, 6
SAMPLE = functools.partial(sample_episodes, sample_glyph_pool(12, 10, seed=0), batch_size=SIZE)


def batches_after(spares):
    """The images of three batches, with spares[i] calls of sample_spare before the i-th, and the run's
    generator after them."""
    generator = torch.Generator().manual_seed(3)
    batches = BankedBatches(SAMPLE, generator, SIZE, ROOM)
    drawn = []
    for spare in spares:
        for _ in range(spare):
            batches.sample_spare()
        drawn.append(batches.next().images)
    return drawn, generator


def one_at_a_time(count, seed=3):
    """`count` episodes drawn one after another from a fresh generator, and the generator after them."""
    generator = torch.Generator().manual_seed(seed)
    return [SAMPLE(generator=generator, batch_size=1).images for _ in range(count)], generator


def test_batches_are_the_same_however_many_episodes_were_banked_before():
    expected, after = one_at_a_time(3 * SIZE)
    expected = [torch.cat(expected[i:i + SIZE]) for i in range(0, 3 * SIZE, SIZE)]
    for spares in ([0, 0, 0], [1, 0, 5], [ROOM, ROOM, ROOM], [2, 9, 0]):
        drawn, generator = batches_after(spares)
        assert all(torch.equal(a, b) for a, b in zip(drawn, expected)), f"other episodes with spares {spares}"
        # The run's generator stands after the batches trained on, not after the episodes still banked.
        assert torch.equal(generator.get_state(), after.get_state()), f"generator elsewhere with spares {spares}"


def test_the_bank_holds_at_most_its_room():
    batches = BankedBatches(SAMPLE, torch.Generator().manual_seed(0), SIZE, ROOM)
    assert [batches.sample_spare() for _ in range(ROOM + 2)] == [True] * ROOM + [False] * 2
    batches.next()
    assert [batches.sample_spare() for _ in range(SIZE + 1)] == [True] * SIZE + [False]


def test_a_bank_too_small_for_a_batch_is_refused():
    with pytest.raises(ValueError, match="a bank of 2 episodes cannot hold a batch of 3"):
        BankedBatches(SAMPLE, torch.Generator(), SIZE, 2)
