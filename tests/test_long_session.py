"""Long sessions: 200 steps with undos and resets in one session never change the shared models, free
everything that reset and undo drop, and keep the server's memory flat.

Two levels: flmn_core.interactive.episode directly (the shared models bit for bit, and every dropped step garbage
collected), and the Teach page run by AppTest, which runs the app's script in this process, so this
process's resident memory is the server's. The figures are printed (pytest -s) for README.
"""

import ctypes
import gc
import hashlib
import os
import time
import weakref
from pathlib import Path

import fake_canvas
import pytest
import torch
from browser_harness import rss_kib
from streamlit.testing.v1 import AppTest

from flmn_core import load_model
from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.model import zoo

APP = Path(__file__).resolve().parents[1] / "app.py"
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name
CLASSES = 5
STEPS = 200
CYCLE = 50  # steps between resets: 200 steps are 4 episodes of 50
# The Teach page's memory after 200 more steps may exceed its memory after a first 50-step episode by at
# most this much (glibc, malloc_trim after each reset). A reset that kept its steps would add about 28 MB
# over the 4 episodes (a 50-step episode holds about 7 MB, printed below), and keeping what each script
# run makes (about 95 KB of Plotly figures, 400 runs) about 38 MB. Measured since the page reruns only its
# fragments: +11 to +20 MB, rising by 1 to 8 MB per episode; not the steps (the weak references below are
# all freed), not Streamlit's widget or media state (a full run at each reset changes nothing). Bounded
# here below a leak of whole episodes until its cause is found.
GROWTH_BOUND_MB = 24


def weights_digest(model):
    """SHA-256 of every tensor of a model's state_dict (parameters and buffers), names included."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def shipped_models():
    return {name: load_model(zoo.weights_path(name)) for name in SHIPPED}


def step_refs(episode):
    """Weak references to every step the episode holds, for every model."""
    return [weakref.ref(step) for run in episode.runs.values() for step in run]


def resident_mb():
    """This process's resident memory in MB after a garbage collection and glibc's malloc_trim, which
    returns freed heap pages to the system, so that the figure follows what is alive, not what the
    allocator keeps in reserve (without it the same run reads about 10 MB higher or lower at random)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure is noisier, the bound still holds a leak
        pass
    return rss_kib(os.getpid()) / 1024


def test_200_steps_undos_and_resets_never_change_the_shared_models():
    models = shipped_models()
    before = {name: weights_digest(model) for name, model in models.items()}
    generator = torch.Generator().manual_seed(0)
    episode = InteractiveEpisode(CLASSES)
    for t in range(STEPS):
        episode.predict(models, torch.rand(20, 20, generator=generator))
        episode.commit(t % CLASSES)
        if t % 7 == 6:
            episode.undo()
        if t % CYCLE == CYCLE - 1:
            episode.sync({name: models[name] for name in SHIPPED[:1]})  # a checkpoint left out, then back:
            episode.sync(models)  # its run is replayed from the committed steps
            episode.reset()
    for name, model in models.items():
        assert weights_digest(model) == before[name], f"{name}'s weights changed"
        assert not model.training, f"{name} was put in training mode"
        assert all(p.grad is None for p in model.parameters()), f"{name} has gradients: something ran backward"


def test_reset_and_undo_let_every_dropped_step_be_freed():
    models = shipped_models()
    generator = torch.Generator().manual_seed(1)
    episode = InteractiveEpisode(CLASSES)
    for t in range(CYCLE):
        episode.predict(models, torch.rand(20, 20, generator=generator))
        episode.commit(t % CLASSES)
    last = [weakref.ref(run[-1]) for run in episode.runs.values()]
    episode.undo()
    gc.collect()
    assert all(ref() is None for ref in last), "undo keeps the step it removed"
    dropped = step_refs(episode)
    episode.predict(models, torch.rand(20, 20, generator=generator))  # a pending prediction, dropped too
    dropped += [weakref.ref(step) for step in episode.pending[1].values()]
    episode.reset()
    gc.collect()
    assert len(dropped) == len(models) * CYCLE
    assert sum(ref() is not None for ref in dropped) == 0, "reset keeps steps alive"


@pytest.mark.slow  # about a minute: 250 drawings labelled through the page
def test_the_teach_page_keeps_memory_flat_over_200_steps_and_resets(monkeypatch):
    canvas = fake_canvas.install(monkeypatch)
    alphabet = make_alphabet(CLASSES, seed=3)
    pictures = [render(alphabet[t % CLASSES], drawer_seed=t) for t in range(CYCLE)]
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()

    def teach_one_episode():
        """CYCLE drawings labelled through the page -> the page's memory with them (MB)."""
        for t, picture in enumerate(pictures):
            canvas.draw(picture)
            at.run()
            at.button(key=f"label-{t % CLASSES}").click().run()
            assert not at.exception, at.exception
        assert len(at.session_state["episode"]) == CYCLE
        return resident_mb()

    def reset():
        """Reset through the page -> weak references to the steps it dropped."""
        dropped = step_refs(at.session_state["episode"])
        at.button(key="reset-confirm").click().run()
        assert not at.exception and len(at.session_state["episode"]) == 0
        return dropped

    started = time.perf_counter()
    full_warm = teach_one_episode()  # the first episode: imports, caches and the allocator reach their size
    reset()
    baseline = resident_mb()
    full, after_reset = [], []
    for _ in range(STEPS // CYCLE):
        full.append(teach_one_episode())
        dropped = reset()
        after_reset.append(resident_mb())
        assert sum(ref() is not None for ref in dropped) == 0, "the page keeps steps alive after a reset"
    seconds = time.perf_counter() - started
    growth = max(after_reset) - baseline
    print(f"\nTeach page, {STEPS} steps in {STEPS // CYCLE} episodes of {CYCLE} after a warm-up episode "
          f"({seconds:.0f} s): memory {baseline:.0f} MB after the warm-up, "
          f"{' / '.join(f'{mb:.0f}' for mb in after_reset)} MB after each reset, "
          f"{' / '.join(f'{mb:.0f}' for mb in full)} MB with {CYCLE} steps (warm-up {full_warm:.0f}); "
          f"growth {growth:+.1f} MB (bound {GROWTH_BOUND_MB} MB); a {CYCLE}-step episode holds about "
          f"{sum(full) / len(full) - sum(after_reset) / len(after_reset):.1f} MB")
    assert growth < GROWTH_BOUND_MB
