"""Human mode: flmn_core.interactive.human scores a person as the models are scored, and the Play page (AppTest) shows
each drawing, the true label one step late, and at the end the person's per-instance score beside Santoro
et al.'s human row and both models' scores on the same episode."""

from pathlib import Path

import pytest
import streamlit as st
import torch
from page_address import address
from streamlit.testing.v1 import AppTest

from flmn_core import load_model, split_indices
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.interactive.episode import (
    EpisodeError,
    InteractiveEpisode,
    episode_from_pool,
)
from flmn_core.interactive.human import HumanPlay
from flmn_core.model import zoo
from flmn_core.results import paper

APP = Path(__file__).resolve().parents[1] / "app.py"
PLAY = "app_pages/play.py"
TIMEOUT = 60
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name


def glyph_episode(samples, seed=0):
    return episode_from_pool(sample_glyph_pool(40, 10, seed), 5, samples, seed)


def test_a_player_is_told_each_label_one_step_late_and_scored_by_instance():
    episode = glyph_episode(3)
    game = HumanPlay(episode.images, episode.labels, 5)
    assert game.feedback() is None and torch.equal(game.current(), episode.images[0])
    answers = [(label + 1) % 5 if instance == 1 else label  # wrong guesses, then right from memory
               for label, instance in zip(episode.labels, episode.instances().tolist())]
    answers[-1] = (answers[-1] + 2) % 5  # and one slip at the end
    for t, answer in enumerate(answers):
        if t:
            image, truth, given = game.feedback()
            assert torch.equal(image, episode.images[t - 1]) and truth == episode.labels[t - 1] and given == answers[t - 1]
        assert game.answer(answer) == (answer == episode.labels[t])
    assert game.done and game.step == 15
    correct, total = game.instance_accuracy(3)
    assert total == [5, 5, 5] and correct[0] == 0 and sum(correct) == 9
    with pytest.raises(EpisodeError, match="over"):
        game.answer(0)


def test_the_players_score_is_counted_as_the_models_are():
    """A 'player' answering what a model predicted gets exactly that model's per-instance accuracy."""
    episode = glyph_episode(10, seed=4)
    model = load_model(zoo.weights_path(FLMN))
    episode.sync({"flmn": model})
    predicted = [step.predicted for step in episode.runs["flmn"]]
    game = HumanPlay(episode.images, episode.labels, 5, predicted)
    assert game.instance_accuracy() == episode.instance_accuracy("flmn")


@pytest.mark.parametrize("bad", [[5], [-1], ["2"]])
def test_answers_outside_the_labels_are_refused(bad):
    episode = glyph_episode(2)
    with pytest.raises(EpisodeError):
        HumanPlay(episode.images, episode.labels, 5, bad)


def test_playing_a_whole_short_episode_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("FLMN_DATA_DIR", str(tmp_path))  # no Omniglot here: the game falls back to generated characters
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["samples"] = "2"  # 5 characters x 2 drawings: a game of 10 answers
    at.switch_page(PLAY).run()
    assert not at.exception, at.exception
    assert at.radio(key="play_source").value == "glyphs" and "FLMN_DATA_DIR" in " ".join(c.value for c in at.caption)
    expected = episode_from_pool(sample_glyph_pool(40, 10, 0), 5, 2, 0)
    instances = expected.instances().tolist()
    for t, (label, instance) in enumerate(zip(expected.labels, instances)):
        shown = at.session_state["play"][1].current()
        assert torch.equal(shown, expected.images[t])  # the page shows the episode's drawing ...
        progress = at.get("progress")[0].proto.text
        assert progress == f"Drawing {t + 1} of 10"
        if t:  # ... and the previous drawing's true label, only now
            assert f"The previous drawing was label **{expected.labels[t - 1] + 1}**" in " ".join(m.value for m in at.markdown)
        answer = label if instance > 1 else (label + 1) % 5  # first drawings guessed wrong, later ones right
        at.button(key=f"play-answer-{answer}").click().run()
        assert not at.exception, at.exception
    assert address(at)["answers"] == "".join(str((l if i > 1 else (l + 1) % 5) + 1)
                                                 for l, i in zip(expected.labels, instances))

    table = next(m.value for m in at.markdown if m.value.startswith("| who |"))
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["You"] == ["0% (0/5)", "100% (5/5)"]
    assert rows["Santoro et al.'s human players (Omniglot)"] == [f"{paper.HUMAN.accuracy[k]:.1f}%" for k in (1, 2)]
    for name in SHIPPED:  # the models on the very same episode
        episode = InteractiveEpisode.from_sequence(expected.images, expected.labels, 5)
        episode.sync({name: load_model(zoo.weights_path(name))})
        correct, total = episode.instance_accuracy(name, 2)
        assert rows[name] == [f"{100 * c / 5:.0f}% ({c}/5)" for c in correct]
    assert len(at.get("plotly_chart")) == 1

    again = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a reload: the finished game comes back
    again.query_params.update(address(at))
    again.switch_page(PLAY).run()
    assert next(m.value for m in again.markdown if m.value.startswith("| who |")) == table
    again.button(key="play-restart").click().run()
    assert again.get("progress")[0].proto.text == "Drawing 1 of 10" and address(again)["answers"] == ""


def test_with_omniglot_here_the_game_is_on_its_held_out_test_characters(omniglot):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # the omniglot fixture filled this session's cache
    at.switch_page(PLAY).run()
    assert not at.exception and at.radio(key="play_source").value == "omniglot"
    expected = episode_from_pool(omniglot.images[split_indices("test")], 5, 10, 0)
    assert torch.equal(at.session_state["play"][1].current(), expected.images[0]) and len(at.session_state["play"][1]) == 50
