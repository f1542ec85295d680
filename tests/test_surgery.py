"""flmn_core.interactive.surgery: wiping and freezing memory rows and changing gamma do what they claim, on the models'
own steps, and never change the shared model.

A hand-made FLMN that retrieves (tests/memory_models.py) shows the claims in the paper's own terms: wipe
the row its read lands on and it no longer knows the label; wipe another and it still does.
"""

import copy

import pytest
import torch
from memory_models import distinct_drawings, retrieving_flmn

from flmn_core import build_model, load_model
from flmn_core.interactive import memory_rows, surgery
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.model import addressing, zoo

TINY = dict(classes=3, controller_size=10, memory_rows=12, word_size=5)
VARIANTS = {"flmn": ("flmn", dict(label_word_size=4)), "flmn-read-first": ("flmn", dict(read_first=True)),
            "mann-2-heads": ("mann", dict(read_heads=2)), "mann-add": ("mann", dict(write_content="add"))}


def tiny_model(variant, seed=0):
    torch.manual_seed(seed)
    kind, config = VARIANTS[variant]
    return build_model(kind, **TINY, **config).eval()


def episode_of(model, images, labels, classes):
    """An InteractiveEpisode of the given steps, run by one model -> (episode, [Step], inputs)."""
    episode = InteractiveEpisode.from_sequence(images, labels, classes)
    episode.sync({"model": model})
    inputs = [(episode.images[t], episode.prev_label(t)) for t in range(len(episode))]
    return episode, episode.runs["model"], inputs


def random_episode(model, steps=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(steps, 20, 20, generator=generator)
    labels = torch.randint(0, 3, (steps,), generator=generator)
    return episode_of(model, images, labels, 3)


def memories(state):
    return {name: getattr(state, name) for name in surgery.memory_fields(state)}


def weights_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


@pytest.mark.parametrize("variant", VARIANTS)
def test_wiping_empties_exactly_the_chosen_rows_in_a_copy(variant):
    _, steps, _ = random_episode(tiny_model(variant))
    state = steps[-1].state
    kept = copy.deepcopy(state)
    wiped = surgery.wipe_rows(state, [1, 4])
    rows = torch.tensor([1, 4])
    others = torch.tensor([r for r in range(state.usage.shape[-1]) if r not in (1, 4)])
    for name, memory in memories(wiped).items():
        assert memory[0, rows].abs().max() == 0, name
        assert torch.equal(memory[0, others], getattr(state, name)[0, others]), name
    assert wiped.usage[0, rows].abs().max() == 0 and torch.equal(wiped.usage[0, others], state.usage[0, others])
    assert torch.equal(wiped.least_used, addressing.least_used(wiped.usage, state.least_used.shape[1]))
    assert int(wiped.least_used[0, 0].argmax()) == 1  # an empty row is the least used: it is written next
    for name, value in kept._asdict().items():  # the state given is untouched
        assert torch.equal(getattr(state, name), value), name


def test_rows_outside_the_memory_are_refused():
    _, steps, _ = random_episode(tiny_model("flmn"))
    with pytest.raises(ValueError, match="outside the memory's rows 0..5"):
        surgery.wipe_rows(steps[-1].state, [6])
    with pytest.raises(ValueError, match="row numbers"):
        surgery.Edit(wipe=(-1,))
    with pytest.raises(ValueError, match="between 0 and 1"):
        surgery.Edit(gamma=1.5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_replay_without_an_edit_is_the_original_run(variant):
    model = tiny_model(variant)
    _, steps, inputs = random_episode(model)
    replayed = surgery.replay(model, inputs, surgery.Edit())
    for original, again in zip(steps, replayed, strict=True):
        assert torch.equal(original.probabilities, again.probabilities)
        for name, value in original.state._asdict().items():
            assert torch.equal(getattr(again.state, name), value), name


def test_the_step_after_a_wipe_reads_the_wiped_memory():
    """read_first addresses the memory after Eq. (7) and before the write: a wiped row is all zeros
    there, so its cosine similarity to the key (Eq. 1) is exactly 0."""
    model = tiny_model("flmn-read-first")
    _, steps, inputs = random_episode(model, steps=8)
    wipe = steps[6].trace.similarity[0].nonzero().flatten()[:3]  # three rows the step saw holding something
    edited = surgery.edited_run(model, inputs, steps, surgery.Edit(step=6, wipe=tuple(wipe.tolist())))
    assert all(a is b for a, b in zip(edited[:6], steps[:6]))  # the steps before the edit are the original ones
    assert len(wipe) == 3 and torch.equal(edited[6].trace.similarity[0, wipe], torch.zeros(3))


@pytest.mark.parametrize("variant", VARIANTS)
def test_frozen_rows_keep_the_content_they_had_when_the_edit_began(variant):
    model = tiny_model(variant)
    _, steps, inputs = random_episode(model, steps=10)
    edit = surgery.Edit(step=3, freeze=(0, 2))
    edited = surgery.edited_run(model, inputs, steps, edit)
    start = memories(steps[2].state)  # the memory as step 3 began
    for step in edited[3:]:
        for name, memory in memories(step.state).items():
            assert torch.equal(memory[:, [0, 2]], start[name][:, [0, 2]]), name
    unfrozen = memories(edited[-1].state)
    assert any(not torch.equal(memory[:, 1], start[name][:, 1]) for name, memory in unfrozen.items())


@pytest.mark.parametrize("variant", VARIANTS)
def test_gamma_changes_the_usage_decay_of_every_step_and_only_in_a_copy(variant):
    model = tiny_model(variant)
    before, config = weights_of(model), model.config
    _, steps, inputs = random_episode(model)
    edited = surgery.edited_run(model, inputs, steps, surgery.Edit(gamma=0.5))
    clone = surgery.with_gamma(model, 0.5)
    assert clone.config.gamma == 0.5 and model.config is config and model.config.gamma == 0.95
    assert all(a is b for a, b in zip(clone.parameters(), model.parameters()))  # shared, never copied
    previous = torch.zeros_like(edited[0].state.usage)
    for step in edited:  # Eq. (4) with the new gamma, from the step's own read and write weights
        read, write, _ = memory_rows.addressing_of(step.state, step.trace)
        torch.testing.assert_close(step.state.usage[0], 0.5 * previous[0] + read.sum(0) + write)
        previous = step.state.usage
    assert not torch.equal(edited[-1].state.usage, steps[-1].state.usage)
    assert_same_weights(model, before)
    assert surgery.with_gamma(model, None) is model and surgery.with_gamma(model, 0.95) is model


def retrieving_episode(labels=(0, 1, 2, 0)):
    """The hand-made retrieving FLMN taught three characters, then shown the first again."""
    model = retrieving_flmn()
    images = distinct_drawings(3)[[0, 1, 2, 0]]
    return (model, *episode_of(model, images, list(labels), 3))


def test_the_retrieving_model_reads_the_row_of_the_earlier_drawing():
    _, episode, steps, _ = retrieving_episode()
    rows = memory_rows.describe_steps(steps, episode.labels)
    read = steps[3].state.read_weights[0, 0]
    assert int(read.argmax()) == 0 and read[0] > 0.99 and int(rows.writer[0]) == 0 and bool(rows.same_label[0])
    assert steps[3].predicted == 0 and steps[3].probabilities[0] > 0.99


def test_wiping_the_row_the_model_retrieves_from_changes_its_prediction():
    model, episode, steps, inputs = retrieving_episode()
    wiped = surgery.edited_run(model, inputs, steps, surgery.Edit(step=3, wipe=(0,)))[3]
    assert wiped.predicted != 0 and wiped.probabilities[0] < 0.1
    assert wiped.state.read_weights[0, 0, 0] < 0.01  # the read went elsewhere
    for other in (1, 2):  # wiping a row it does not read leaves the prediction
        kept = surgery.edited_run(model, inputs, steps, surgery.Edit(step=3, wipe=(other,)))[3]
        assert kept.predicted == 0 and kept.probabilities[0] > 0.99


def test_freezing_a_row_before_its_label_arrives_keeps_the_label_out():
    """Row 0 is frozen as step 1 begins, when it holds x_0's features but not yet their label (Eq. (10)
    writes it at step 1). Restored after each step, it never gets the label: the read still lands there at
    step 3 but reads no label, and the prediction falls to a guess."""
    model, episode, steps, inputs = retrieving_episode()
    frozen = surgery.edited_run(model, inputs, steps, surgery.Edit(step=1, freeze=(0,)))
    assert frozen[3].state.read_weights[0, 0, 0] > 0.99
    assert frozen[3].state.label_memory[0, 0].abs().max() == 0
    torch.testing.assert_close(frozen[3].probabilities, torch.full((3,), 1 / 3))
    after_label = surgery.edited_run(model, inputs, steps, surgery.Edit(step=2, freeze=(0,)))
    assert after_label[3].predicted == 0  # frozen once the label is in, the row keeps it


@pytest.mark.parametrize("name", ["flmn-exp1", "flmn-retrieve", "flmn-conv"])
def test_a_checkpoint_after_wiping_every_row_reads_only_what_the_step_wrote(name):
    """With every row wiped as step t begins, FLMN's label memory holds only the label y_{t-1} that step t
    writes in the row of x_{t-1} (Eqs. 9-10), so the label read is r_t = (w^r_t . w^wf_{t-1}) a^l_t."""
    model = load_model(zoo.weights_path(name))
    before = weights_of(model)
    drawings = distinct_drawings(5, seed=3)
    labels = [0, 1, 2, 3, 4, 0, 1, 2]
    _, steps, inputs = episode_of(model, drawings[[0, 1, 2, 3, 4, 0, 1, 2]], labels, 5)
    t = 6
    edited = surgery.edited_run(model, inputs, steps, surgery.Edit(step=t, wipe=tuple(range(64))))[t]
    label_write = steps[t - 1].state.feature_write_weights[0, 0]
    expected = (edited.state.read_weights[0, 0] @ label_write) * edited.trace.label_add[0]
    torch.testing.assert_close(edited.state.read[0], expected)
    assert not torch.allclose(steps[t].state.read, edited.state.read)
    torch.testing.assert_close(torch.softmax(surgery.logits_of(model, edited.state)[0], 0), edited.probabilities)
    assert_same_weights(model, before)
