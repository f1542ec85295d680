"""Retrieval measures against plain loops, on hand-built and on real model recordings.

A recording says, for every step, where each head read and wrote; `flmn_core.model.retrieval` turns it and the
episode's labels into "which rows hold earlier drawings of this class" and how much of the read lands there.
"""

import numpy as np
import pytest
import torch

import flmn_core
from flmn_core.model import retrieval
from flmn_core.model.networks import Recording


def reference_contents(read, write, cleared, labels, classes):
    """row_contents with class tags as loops: [B, T, N, C] from write [B, T, R, N], cleared [B, T, N]."""
    B, T, R, N = write.shape
    out = np.zeros((B, T, N, classes))
    for b in range(B):
        held = np.zeros((N, classes))
        for t in range(T):
            for i in range(N):
                held[i] *= 1.0 - cleared[b, t, i]
            out[b, t] = held
            for i in range(N):
                held[i, labels[b, t]] += write[b, t, :, i].sum()
    return out


def random_recording(B=3, T=9, R=2, N=6, seed=0):
    """Soft read and write weights (summing to 1 per head) and one-hot cleared rows."""
    g = torch.Generator().manual_seed(seed)
    read = torch.rand(B, T, R, N, generator=g).softmax(-1)
    write = torch.rand(B, T, R, N, generator=g).softmax(-1)
    cleared = torch.nn.functional.one_hot(torch.randint(0, N, (B, T), generator=g), N).float()
    return Recording(read, write, cleared)


def test_row_contents_match_a_loop():
    recording = random_recording()
    labels = torch.randint(0, 4, (3, 9), generator=torch.Generator().manual_seed(1))
    got = retrieval.row_contents(recording, torch.nn.functional.one_hot(labels, 4))
    expected = reference_contents(*(x.numpy() for x in recording), labels.numpy(), 4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_hand_built_episode():
    """One head, 3 rows, hard writes: step 0 (class 0) -> row 0, step 1 (class 1) -> row 1, step 2 (class 0)
    reads row 0 fully, step 3 (class 1) reads rows 0 and 2 half each, after row 1 was cleared."""
    write = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])[None, :, None]
    read = torch.tensor([[1 / 3] * 3, [1., 0, 0], [1., 0, 0], [.5, 0, .5]])[None, :, None]
    cleared = torch.tensor([[0., 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0]])[None]
    labels = torch.tensor([[0, 1, 0, 1]])
    instances = torch.tensor([[1, 1, 2, 2]])
    stats = retrieval.retrieval_stats(Recording(read, write, cleared), labels, instances, classes=2)
    assert stats["seen"].tolist() == [[False, False, True, True]]
    assert stats["top_hit"][0, 2] == 1 and stats["mass"][0, 2] == 1  # row 0 holds class 0
    assert stats["top_hit"][0, 3] == 0 and stats["mass"][0, 3] == 0  # class 1's row was cleared
    assert stats["focus"][0, 2] == pytest.approx(1.0) and stats["focus"][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert stats["lost"][0, 2] == 0 and stats["lost"][0, 3] == 1  # class 1's only row was cleared before step 3
    loss = retrieval.retrieval_loss(Recording(read, write, cleared), labels, instances, classes=2)
    assert loss == pytest.approx(-(np.log(1 + 1e-6) + np.log(1e-6)) / 2)


def test_loss_with_a_null_row_counts_new_classes_reading_nothing():
    """With new_reads_nothing, a first showing is scored by the read weight left to nothing."""
    write = torch.tensor([[1., 0], [0, 1]])[None, :, None]
    read = torch.tensor([[0.1, 0.1], [0.7, 0.0]])[None, :, None]  # step 0 reads 0.8 of nothing
    labels, instances = torch.tensor([[0, 0]]), torch.tensor([[1, 2]])
    loss = retrieval.retrieval_loss(Recording(read, write, torch.zeros(1, 2, 2)), labels, instances, 2,
                                    new_reads_nothing=True)
    assert loss.item() == pytest.approx(-(np.log(0.8 + 1e-6) + np.log(0.7 + 1e-6)) / 2, rel=1e-5)


@pytest.mark.parametrize("name, config", [
    ("flmn", dict(read_first=True, key_strength=True, mask_empty_rows=True, null_row=True)),
    ("mann", dict(read_heads=2)),
])
def test_recording_is_what_the_steps_did(name, config):
    """model(..., record=True) stacks each step's read weights, write weights and cleared rows exactly as
    model.step reports them, and its logits are model(...)'s."""
    torch.manual_seed(0)
    model = flmn_core.build_model(name, classes=3, controller_size=8, memory_rows=8, word_size=4, **config)
    images = torch.rand(2, 6, 20, 20)
    prev = flmn_core.data.episodes.offset_labels(torch.randint(0, 3, (2, 6)), 3)
    with torch.no_grad():
        logits, recording = model(images, prev, record=True)
        torch.testing.assert_close(logits, model(images, prev))
        state = None
        for t in range(6):
            _, state, trace = model.step(images[:, t], prev[:, t], state)
            read, write, cleared = type(model).addressing_of(state, trace)
            torch.testing.assert_close(recording.read_weights[:, t], read)
            torch.testing.assert_close(recording.write_weights[:, t], write)
            torch.testing.assert_close(recording.cleared[:, t], cleared)


def test_a_class_is_lost_when_every_row_holding_it_was_overwritten():
    """Two rows, written in turn by classes 0, 1, 2, then 0 again: class 2's write cleared row 0 (class 0's only
    row); at step 3, class 0 is lost, and class 1, whose row still stands, is not."""
    write = torch.tensor([[1., 0], [0, 1], [1, 0], [0, 0], [0, 0]])[None, :, None]
    cleared = torch.tensor([[0., 0], [0, 0], [1, 0], [0, 0], [0, 0]])[None]
    read = torch.full((1, 5, 1, 2), 0.5)
    labels, instances = torch.tensor([[0, 1, 2, 0, 1]]), torch.tensor([[1, 1, 1, 2, 2]])
    stats = retrieval.retrieval_stats(Recording(read, write, cleared), labels, instances, classes=3)
    assert stats["lost"][0, 3:].tolist() == [1.0, 0.0]
