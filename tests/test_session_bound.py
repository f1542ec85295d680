"""What one session can hold: an episode of at most MAX_STEPS steps, taught or loaded, whose memory on the server
stays under SESSION_BYTES with the app's default checkpoints; at the bound the episode refuses another step
and keeps what it has, and the Teach page says why its label buttons are off (AppTest)."""

from pathlib import Path

import fake_canvas
import pytest
import torch
from streamlit.testing.v1 import AppTest

from flmn_core import load_model
from flmn_core.data.glyphs import make_alphabet, render, sample_glyph_pool
from flmn_core.interactive.episode import MAX_STEPS, EpisodeError, InteractiveEpisode
from flmn_core.model import zoo

APP = Path(__file__).resolve().parents[1] / "app.py"
SESSION_BYTES = 15 * 2**20  # what docs/guarantees.md and episode_file.MAX_STEPS's comment promise
DEFAULTS = {c.name: c for c in (zoo.default("flmn"), zoo.default("mann"))}


def tensor_bytes(value, seen):
    """The bytes of the tensor storages reachable from value (each storage once) -> added into seen."""
    if isinstance(value, torch.Tensor):
        seen[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
    elif isinstance(value, (tuple, list)):
        for item in value:
            tensor_bytes(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            tensor_bytes(item, seen)
    elif hasattr(value, "__dict__"):
        for item in vars(value).values():
            tensor_bytes(item, seen)
    return seen


@pytest.fixture(scope="module")
def full_episode():
    """An episode of MAX_STEPS steps of generated characters, run by the default checkpoints."""
    pool = sample_glyph_pool(5, 10, 0)
    images = [pool[t % 5, (t // 5) % 10] for t in range(MAX_STEPS)]
    episode = InteractiveEpisode.from_sequence(images, [t % 5 for t in range(MAX_STEPS)], 5)
    episode.sync({name: load_model(zoo.weights_path(name)) for name in DEFAULTS})
    return episode


def test_a_full_episode_refuses_another_step_and_keeps_its_own(full_episode):
    episode = InteractiveEpisode.load(full_episode.to_bytes())
    episode.sync(full_episode.models)
    episode.predict(full_episode.models, full_episode.images[0])
    with pytest.raises(EpisodeError, match=f"reached {MAX_STEPS} steps, the most one session keeps"):
        episode.commit(0)
    assert len(episode) == MAX_STEPS and episode.labels == full_episode.labels


def test_a_full_episode_holds_less_than_the_promised_memory(full_episode):
    models = tensor_bytes(full_episode.models, {})
    held = {ptr: size for ptr, size in tensor_bytes(full_episode, {}).items() if ptr not in models}
    assert sum(held.values()) < SESSION_BYTES * 0.75  # tensors; Python's objects around them add about a quarter


def test_the_teach_page_says_why_a_full_episode_takes_no_more_labels(full_episode, monkeypatch):
    canvas = fake_canvas.install(monkeypatch)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    file = ("full.npz", full_episode.to_bytes(), "application/octet-stream")
    at.file_uploader(key="episode_upload_0").set_value(file)
    at.run()
    canvas.draw(render(make_alphabet(3, seed=7)[0], drawer_seed=1))
    at.run()
    assert not at.exception, at.exception
    assert f"{MAX_STEPS} steps, the most one session keeps" in " ".join(info.value for info in at.info)
    assert all(at.button(key=f"label-{c}").disabled for c in range(5))
    assert at.session_state["episode"].pending is not None  # the drawing is still predicted and shown
