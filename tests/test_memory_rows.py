"""flmn_core.interactive.memory_rows: which drawing each memory row holds, and how focused a read is, checked against
hand-worked examples and against flmn_core.model.retrieval's own measure on the models' recordings."""

import math

import pytest
import torch

from flmn_core import build_model
from flmn_core.interactive import memory_rows
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.memory_rows import NO_ROW
from flmn_core.model import retrieval

TINY = dict(classes=3, controller_size=10, memory_rows=12, word_size=5)


def recorded_episode(kind, steps=12, seed=0, **config):
    """A tiny model run on a random episode, whole (Recording) and step by step (interactive.Steps)."""
    torch.manual_seed(seed)
    model = build_model(kind, **TINY, **config).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    images = torch.rand(steps, 20, 20, generator=generator)
    labels = torch.randint(0, 3, (steps,), generator=generator)
    episode = InteractiveEpisode.from_sequence(images, labels, 3)
    episode.sync({"model": model})
    prev_labels = torch.stack([episode.prev_label(t)[0] for t in range(steps)])
    with torch.no_grad():
        _, recording = model(images[None], prev_labels[None], record=True)
    return recording, episode.runs["model"], labels


def test_sources_of_a_hand_worked_history():
    """Three rows, four steps. Row 0: written at 0 (1.0), cleared at 2, written at 3 (0.6). Row 1: written
    at 1 (0.9) and kept. Row 2: only the film of other steps' writes (0.05 each)."""
    write = torch.tensor([[1.0, 0.0, 0.05], [0.0, 0.9, 0.05], [0.2, 0.0, 0.05], [0.6, 0.0, 0.05]])
    cleared = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]])
    sources = memory_rows.row_sources(write, cleared)
    torch.testing.assert_close(sources, torch.tensor([[0.0, 0, 0.05], [0, 0.9, 0.05], [0.2, 0, 0.05],
                                                      [0.6, 0, 0.05]]))
    rows = memory_rows.describe_rows(write, cleared, labels=[2, 1, 2, 1])
    assert rows.writer.tolist() == [3, 1, NO_ROW] and rows.label.tolist() == [1, 1, NO_ROW]
    torch.testing.assert_close(rows.kept[:2], torch.tensor([0.6, 0.9]))
    # Step 3's label is 1: row 1 holds the earlier drawing x1 of label 1. Row 0's earlier content is x2 (label 2).
    assert rows.same_label.tolist() == [False, True, False]
    unlabelled = memory_rows.describe_rows(write, cleared, labels=[2, 1, 2])  # step 3's label not given yet
    assert unlabelled.label.tolist() == [NO_ROW, 1, NO_ROW] and not unlabelled.same_label.any()


@pytest.mark.parametrize("kind, config", [("flmn", {}), ("mann", dict(read_heads=2))])
def test_sources_agree_with_retrieval_row_contents(kind, config):
    recording, steps, _ = recorded_episode(kind, **config)
    T = recording.write_weights.shape[1]
    contents = retrieval.row_contents(recording, torch.eye(T)[None])[0]  # [T, N, T], before each step's write
    write, cleared = memory_rows.history(steps)
    torch.testing.assert_close(write, recording.write_weights[0].sum(1))
    torch.testing.assert_close(cleared, recording.cleared[0])
    for t in range(1, T):
        # retrieval's contents before step t's write, as rows x steps, are the sources of steps 0..t-1 after t
        expected = contents[t][:, :t].T
        torch.testing.assert_close(memory_rows.row_sources(write[: t + 1], cleared[: t + 1])[:t], expected)


@pytest.mark.parametrize("kind, config", [("flmn", {}), ("flmn", dict(read_first=True)), ("mann", dict(read_heads=2))])
def test_rows_of_the_steps_label_are_those_retrieval_counts(kind, config):
    """same_label is retrieval.class_share > MAJORITY, on the rows where an earlier step left at least HOLDS."""
    recording, steps, labels = recorded_episode(kind, **config)
    share = retrieval.class_share(recording, labels[None], 3)[0]  # [T, N]
    contents = retrieval.row_contents(recording, torch.eye(len(labels))[None])[0]
    for t in range(1, len(labels)):
        rows = memory_rows.describe_steps(steps[: t + 1], labels.tolist())
        holds = contents[t].max(-1).values >= memory_rows.HOLDS
        assert torch.equal(rows.same_label, (share[t] > retrieval.MAJORITY) & holds), t


def test_a_uniform_read_is_unfocused_and_a_one_hot_read_focused():
    rows = memory_rows.RowView(writer=torch.tensor([0, 1, NO_ROW, NO_ROW]), kept=torch.ones(4),
                               label=torch.tensor([1, 0, NO_ROW, NO_ROW]),
                               same_label=torch.tensor([True, False, False, False]))
    uniform = memory_rows.read_focus(torch.full((4,), 0.25), rows)
    assert math.isclose(uniform.entropy.item(), 1.0, rel_tol=1e-6) and math.isclose(uniform.top_weight.item(), 0.25)
    assert math.isclose(uniform.same_label.item(), 0.25) and math.isclose(uniform.no_drawing.item(), 0.5)
    assert uniform.nothing.item() == pytest.approx(0.0, abs=1e-7)
    sharp = memory_rows.read_focus(torch.tensor([[0.0, 1.0, 0, 0], [0.5, 0.5, 0, 0]]), rows)  # two heads
    assert sharp.entropy.tolist() == pytest.approx([0.0, math.log(2) / math.log(4)], abs=1e-6)
    assert sharp.top_row.tolist()[0] == 1
    null = memory_rows.read_focus(torch.tensor([0.6, 0.0, 0.0, 0.0]), rows)  # 0.4 went to a null row
    assert null.nothing.item() == pytest.approx(0.4) and null.entropy.item() == pytest.approx(0.0, abs=1e-6)
    empty = memory_rows.read_focus(torch.zeros(4), rows)  # a masked read of an empty memory
    assert empty.nothing.item() == 1.0 and math.isnan(empty.entropy.item())
    by_label = memory_rows.weight_by_label(torch.tensor([0.1, 0.2, 0.3, 0.0]), rows, classes=2)
    torch.testing.assert_close(by_label, torch.tensor([0.2, 0.1, 0.0, 0.3]))  # labels 0, 1, no label yet, none


def test_a_null_row_read_sums_below_one_and_the_rest_reads_nothing():
    _, steps, labels = recorded_episode("flmn", null_row=True)
    rows = memory_rows.describe_steps(steps, labels.tolist())
    weights = steps[-1].state.read_weights[0]
    focus = memory_rows.read_focus(weights, rows)
    assert 0 < focus.nothing.item() < 1
    torch.testing.assert_close(focus.nothing, 1 - weights.sum(-1))
    total = memory_rows.weight_by_label(weights, rows, 3).sum() + focus.nothing
    torch.testing.assert_close(total, torch.tensor([1.0]))


def test_each_row_is_named_by_its_largest_source_and_given_its_label():
    _, steps, labels = recorded_episode("mann")
    rows = memory_rows.describe_steps(steps, labels.tolist())
    sources = memory_rows.row_sources(*memory_rows.history(steps))
    holds = sources.max(0).values >= memory_rows.HOLDS
    assert torch.equal(rows.writer[holds], sources.argmax(0)[holds]) and (rows.writer[~holds] == NO_ROW).all()
    labelled = rows.writer >= 0
    assert torch.equal(rows.label[labelled], labels[rows.writer[labelled]])


def test_a_row_overwritten_at_the_last_step_names_the_drawing_it_lost():
    """Row 0 holds x0 (label 2) until step 3 clears it and writes x3 there; row 1 keeps x1 (label 1); step 2
    writes the film only. After step 3: row 0 replaced x0 (label 2); after step 2: nothing replaced."""
    write = torch.tensor([[1.0, 0.0, 0.05], [0.0, 0.9, 0.05], [0.02, 0.02, 0.05], [0.8, 0.0, 0.05]])
    cleared = torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    rows = memory_rows.describe_rows(write, cleared, labels=[2, 1, 0])  # step 3's label not given yet
    assert rows.writer.tolist() == [3, 1, NO_ROW] and not rows.label_known
    assert rows.replaced.tolist() == [0, NO_ROW, NO_ROW] and rows.replaced_label.tolist() == [2, NO_ROW, NO_ROW]
    earlier = memory_rows.describe_rows(write[:3], cleared[:3], labels=[2, 1, 0])
    assert earlier.label_known and (earlier.replaced == NO_ROW).all()
