"""flmn_core.interactive.episode: an episode taught step by step gives exactly what the models compute on the whole
sequence in training, and predict / commit / undo / reset / save / load keep it consistent."""

import io

import numpy as np
import pytest
import torch

from flmn_core import build_model, load_model
from flmn_core.data.episodes import offset_labels
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.interactive.episode import (
    EpisodeError,
    InteractiveEpisode,
    episode_from_pool,
)
from flmn_core.model import zoo

C = 3  # classes of the tiny models


def tiny_models(seed=0, classes=C):
    """A tiny FLMN and a tiny MANN with random weights, in eval mode."""
    torch.manual_seed(seed)
    small = dict(classes=classes, controller_size=12, memory_rows=8, word_size=6)
    return {"flmn": build_model("flmn", label_word_size=5, **small).eval(),
            "mann": build_model("mann", read_heads=2, **small).eval()}


def shipped_models():
    """The shipped Experiment I checkpoints (they are part of the repository)."""
    return {name: load_model(zoo.weights_path(name)) for name in ("flmn-exp1", "mann-exp1")}


def random_sequence(steps, classes, seed):
    """images [T, 20, 20] in [0, 1] and labels [T] in 0..C-1."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, 20, 20, generator=generator), torch.randint(0, classes, (steps,), generator=generator)


def teach(episode, models, images, labels):
    """Predict then commit each step, as the Teach page does."""
    for image, label in zip(images, labels):
        episode.predict(models, image)
        episode.commit(int(label))


def forward_probabilities(model, images, labels, classes):
    """The training path: the whole sequence with offset labels -> probabilities [T, C]."""
    with torch.no_grad():
        logits = model(images[None], offset_labels(labels[None], classes))
    return torch.softmax(logits[0], dim=-1)


@pytest.mark.parametrize("source", ["tiny", "shipped"])
def test_teaching_step_by_step_matches_the_training_forward_pass(source):
    models = tiny_models() if source == "tiny" else shipped_models()
    classes = next(iter(models.values())).config.classes
    images, labels = random_sequence(12, classes, seed=1)
    episode = InteractiveEpisode(classes)
    teach(episode, models, images, labels)
    assert len(episode) == 12
    for name, model in models.items():
        expected = forward_probabilities(model, images, labels, classes)
        torch.testing.assert_close(episode.probabilities(name), expected, rtol=1e-5, atol=1e-6)


def test_the_label_fed_at_step_t_is_the_one_given_at_t_minus_1():
    models = tiny_models()
    images, labels = random_sequence(6, C, seed=2)
    episode = InteractiveEpisode(C)
    teach(episode, models, images[:5], labels[:5])
    torch.testing.assert_close(episode.prev_label(5), torch.nn.functional.one_hot(labels[4:5], C).float())
    assert episode.prev_label(0).abs().sum() == 0
    # Another label given at step 4 changes the prediction at step 5, and only through y_{t-1}.
    other = InteractiveEpisode(C)
    changed = labels.clone()
    changed[4] = (labels[4] + 1) % C
    teach(other, models, images[:5], changed[:5])
    a = episode.predict(models, images[5])["flmn"].probabilities
    b = other.predict(models, images[5])["flmn"].probabilities
    assert not torch.allclose(a, b)
    torch.testing.assert_close(b, forward_probabilities(models["flmn"], images, changed, C)[5])


def test_predict_does_not_commit_and_commit_keeps_the_last_prediction():
    models = tiny_models()
    images, labels = random_sequence(3, C, seed=3)
    episode = InteractiveEpisode(C)
    first = episode.predict(models, images[0])
    second = episode.predict(models, images[1])  # the person redrew before labelling
    assert len(episode) == 0
    assert not torch.allclose(first["mann"].probabilities, second["mann"].probabilities)
    episode.commit(int(labels[0]))
    torch.testing.assert_close(episode.images[0], images[1])
    torch.testing.assert_close(episode.probabilities("mann")[0], second["mann"].probabilities)
    with pytest.raises(EpisodeError, match="show the models an image first"):
        episode.commit(0)


def test_undo_and_reset_return_to_earlier_memories():
    models = tiny_models()
    images, labels = random_sequence(5, C, seed=4)
    episode = InteractiveEpisode(C)
    teach(episode, models, images[:4], labels[:4])
    episode.undo()
    assert len(episode) == 3 and episode.labels == [int(v) for v in labels[:3]]
    expected = forward_probabilities(models["flmn"], images[[0, 1, 2, 4]], labels[[0, 1, 2, 4]], C)[3]
    torch.testing.assert_close(episode.predict(models, images[4])["flmn"].probabilities, expected)
    episode.reset()
    assert len(episode) == 0 and all(steps == [] for steps in episode.runs.values())
    fresh = InteractiveEpisode(C).predict(models, images[0])
    torch.testing.assert_close(episode.predict(models, images[0])["mann"].probabilities, fresh["mann"].probabilities)
    with pytest.raises(EpisodeError, match="nothing to undo"):
        InteractiveEpisode(C).undo()


@pytest.mark.parametrize("label", [-1, C, 7, 1.0, "2", True])
def test_a_bad_label_is_refused_and_the_episode_kept(label):
    models = tiny_models()
    images, labels = random_sequence(3, C, seed=5)
    episode = InteractiveEpisode(C)
    teach(episode, models, images[:2], labels[:2])
    episode.predict(models, images[2])
    with pytest.raises(EpisodeError, match=f"1..{C}|whole number"):
        episode.commit(label)
    assert len(episode) == 2 and episode.pending is not None
    episode.commit(int(labels[2]))  # the pending prediction survives the refused label
    assert len(episode) == 3


def test_instance_accuracy_counts_each_presentation():
    models = tiny_models()
    images, labels = random_sequence(15, C, seed=6)
    episode = InteractiveEpisode(C)
    teach(episode, models, images, labels)
    correct, total = episode.instance_accuracy("flmn")
    predicted = episode.probabilities("flmn").argmax(1).tolist()
    seen, want_correct, want_total = {}, [0] * 10, [0] * 10
    for label, guess in zip(labels.tolist(), predicted):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= 10:
            want_total[seen[label] - 1] += 1
            want_correct[seen[label] - 1] += guess == label
    assert (correct, total) == (want_correct, want_total)
    assert sum(total) == 15


def test_sync_replays_new_models_and_drops_a_stale_prediction():
    models = tiny_models(seed=0)
    images, labels = random_sequence(4, C, seed=7)
    episode = InteractiveEpisode(C)
    teach(episode, models, images[:3], labels[:3])
    episode.predict(models, images[3])
    replaced = {"flmn": tiny_models(seed=9)["flmn"]}  # another checkpoint under the same name
    episode.sync(replaced)
    assert set(episode.runs) == {"flmn"} and episode.pending is None
    torch.testing.assert_close(episode.probabilities("flmn"),
                               forward_probabilities(replaced["flmn"], images[:3], labels[:3], C))
    with pytest.raises(EpisodeError, match="tells 2 labels apart and this episode uses 3"):
        episode.sync(tiny_models(classes=2))


def test_an_episode_of_fewer_labels_runs_on_models_of_more_as_in_training():
    """An episode of C = 3 labels on models of L = 5: each model gets its own one-hot of 5, exactly as the
    training forward pass does with those labels; its probabilities cover all 5 labels, and the file keeps
    those of the 3 in use."""
    models = tiny_models(classes=5)
    images, labels = random_sequence(6, C, seed=3)
    episode = InteractiveEpisode(C)
    teach(episode, models, images, labels)
    for name, model in models.items():
        expected = forward_probabilities(model, images, labels, 5)
        torch.testing.assert_close(episode.probabilities(name), expected)
        correct, total = episode.instance_accuracy(name, 6)
        assert sum(correct) == int((expected.argmax(1) == labels).sum()) and sum(total) == 6
    loaded = InteractiveEpisode.load(episode.to_bytes())
    np.testing.assert_allclose(loaded.recorded["flmn"], episode.probabilities("flmn")[:, :C].numpy(), rtol=1e-6)
    loaded.sync(models)
    assert loaded.changed_predictions() == {"flmn": 0, "mann": 0}


def test_the_labels_in_use_change_while_every_label_given_stays_in_use():
    models = tiny_models(classes=5)
    images, labels = random_sequence(4, 2, seed=4)
    episode = InteractiveEpisode(2, ["a", "b"])
    teach(episode, models, images, labels)
    episode.set_classes(4)
    assert episode.classes == 4 and episode.class_names == ["a", "b", "", ""]
    episode.predict(models, images[0])
    episode.commit(3)  # a label the episode did not use before
    with pytest.raises(EpisodeError, match="label 4 is given in this episode"):
        episode.set_classes(3)
    episode.undo()
    episode.set_classes(2)
    assert episode.class_names == ["a", "b"] and episode.labels == labels.tolist()
    with pytest.raises(EpisodeError, match="2 to 100 labels"):
        episode.set_classes(1)


def test_save_and_load_round_trip(tmp_path):
    models = tiny_models()
    images, labels = random_sequence(7, C, seed=8)
    episode = InteractiveEpisode(C, ["alpha", "", "gamma"])
    teach(episode, models, images, labels)
    path = tmp_path / "episode.npz"
    episode.save(path)
    for source in (path, path.read_bytes(), io.BytesIO(episode.to_bytes())):
        loaded = InteractiveEpisode.load(source)
        assert loaded.labels == episode.labels and loaded.class_names == ["alpha", "", "gamma"]
        torch.testing.assert_close(torch.stack(loaded.images), images)
        assert set(loaded.recorded) == {"flmn", "mann"}
        loaded.sync(models)
        assert loaded.changed_predictions() == {"flmn": 0, "mann": 0}
        np.testing.assert_allclose(loaded.recorded["mann"], episode.probabilities("mann").numpy(), rtol=1e-6)
        torch.testing.assert_close(loaded.probabilities("mann"), episode.probabilities("mann"))
    # A different checkpoint under the same name predicts differently, and the loaded episode says so.
    loaded = InteractiveEpisode.load(path)
    loaded.sync({"flmn": tiny_models(seed=5)["flmn"]})
    assert loaded.changed_predictions()["flmn"] > 0
    empty = InteractiveEpisode.load(InteractiveEpisode(C).to_bytes())
    assert len(empty) == 0 and empty.classes == C


def test_episodes_from_a_glyph_pool_replay_with_traces():
    pool = sample_glyph_pool(8, 4, seed=0)
    episode = episode_from_pool(pool, C, 4, seed=1)
    again = episode_from_pool(pool, C, 4, seed=1)
    assert len(episode) == C * 4 and episode.labels == again.labels
    assert sorted(episode.labels) == sorted(list(range(C)) * 4)
    assert episode.instances().tolist()[:1] == [1] and max(episode.instances().tolist()) == 4
    models = tiny_models()
    episode.sync(models)
    images, labels = torch.stack(episode.images), torch.tensor(episode.labels)
    torch.testing.assert_close(episode.probabilities("flmn"), forward_probabilities(models["flmn"], images, labels, C))
    step = episode.runs["mann"][5]
    assert step.state.memory.shape == (1, 8, 6) and step.state.read_weights.shape == (1, 2, 8)
    assert step.trace.write_weights.shape == (1, 2, 8)
    with pytest.raises(EpisodeError, match="cannot draw"):
        episode_from_pool(pool, C, 5, seed=1)  # only 4 drawings per character
