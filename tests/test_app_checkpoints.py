"""The app with a checkpoint that cannot be loaded (AppTest, no browser): every kind of bad file leaves the
pages working with the checkpoints that do load, says which file failed and why without the server's
folders, never runs code from the file, and is not read again on every rerun."""

import re
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_shared import frame
from flmn_core import load_model
from flmn_core.model import zoo

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = ("app_pages/explorer.py", "app_pages/results.py", "app_pages/how_it_works.py", "app_pages/teach.py")
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name


class CreatesMarker:
    """Unpickling this calls open(marker, "w"): a stand-in for any code a foreign pickle could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def checkpoint_copy(tmp_path, monkeypatch):
    """A checkpoint folder with copies of the shipped Experiment I checkpoints, made the app's."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in SHIPPED:
        shutil.copy(zoo.weights_path(name), folder / f"{name}.pt")
    monkeypatch.setenv("FLMN_CHECKPOINT_DIR", str(folder))
    return folder


def spoil(path, **changes):
    """Rewrite a checkpoint with some entries changed; a callable value is applied to the payload."""
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        payload[key] = value(payload) if callable(value) else value
    torch.save(payload, path)


def with_nan(payload):
    weights = dict(payload["state_dict"])
    weights["classifier.weight"] = torch.full_like(weights["classifier.weight"], float("nan"))
    return weights


BAD = {
    "model entry a list": (dict(model=["flmn"]), "unknown model ['flmn']"),
    "format_version a tensor": (dict(format_version=torch.tensor(1)), "not a whole number"),
    "1.5M classes": (dict(config=lambda p: {**p["config"], "classes": 1_500_000}), "config"),
    "NaN weights": (dict(state_dict=with_nan), "NaN or infinite"),
    "code in the pickle": (None, "refused: loading it would import io.open"),  # metrics that open a marker file
}


def errors(at):
    """The page's error messages as they read (Markdown escapes resolved, word joiners dropped)."""
    return re.sub(r"\\(.)", r"\1", " ".join(str(e.value) for e in at.error)).replace("\u2060", "")


@pytest.mark.parametrize("changes, reason", BAD.values(), ids=BAD.keys())
def test_a_bad_checkpoint_leaves_the_app_working_with_the_others(checkpoint_copy, tmp_path, changes, reason):
    marker = tmp_path / "marker"
    spoil(checkpoint_copy / f"{FLMN}.pt", **(changes or dict(metrics=CreatesMarker(marker))))

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    shown = errors(at)
    assert f"{FLMN} could not be loaded from {FLMN}.pt" in shown and reason in shown, shown
    assert str(checkpoint_copy) not in shown and str(tmp_path) not in shown  # no server folders
    assert set(at.session_state["models"]) == {MANN}
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert f"{FLMN} could not be loaded" in errors(at)
    assert not marker.exists()


def test_a_bad_checkpoint_is_read_once_not_on_every_rerun(checkpoint_copy, monkeypatch):
    spoil(checkpoint_copy / f"{FLMN}.pt", model=["flmn"])
    reads = []
    load_model = frame.load_model
    monkeypatch.setattr(frame, "load_model",
                        lambda path, sha256: reads.append(Path(path).name) or load_model(path, sha256))
    at = AppTest.from_file(str(APP), default_timeout=60)
    for _ in range(3):
        at.run()
        assert f"{FLMN} could not be loaded" in errors(at)
    assert reads.count(f"{FLMN}.pt") == 1


def test_every_shipped_checkpoint_is_the_one_its_card_states():
    for shipped in zoo.CHECKPOINTS:
        assert load_model(zoo.weights_path(shipped.name), zoo.card_sha256(shipped.name)).config.classes >= 2


def test_a_checkpoint_changed_since_its_card_was_written_is_refused(checkpoint_copy):
    for name in SHIPPED:
        shutil.copy(zoo.card_path(name, APP.parent / zoo.FOLDER), checkpoint_copy / f"{name}.md")
    spoil(checkpoint_copy / f"{FLMN}.pt", step=1)  # a valid checkpoint, but not the one its card describes
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert f"{FLMN} could not be loaded from {FLMN}.pt: its sha256 is" in errors(at)
    assert "as its model card states" in errors(at) and set(at.session_state["models"]) == {MANN}
