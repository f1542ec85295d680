"""The checkpoints in checkpoints/ are what their model cards and README say they are."""

import json
from pathlib import Path

import pytest
import torch

from flmn_core import load_model, split_indices, zoo
from flmn_core.evaluate import evaluate_model
from flmn_core.publish import card_markdown
from flmn_core.report import README_END, README_START, results_markdown

SHIPPED = [entry.name for entry in zoo.CHECKPOINTS]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", SHIPPED)
def test_each_checkpoint_is_shipped_with_card_results_and_log(name):
    for path in (zoo.weights_path(name), zoo.card_path(name), zoo.log_path(name),
                 zoo.result_path(name, "omniglot"), zoo.result_path(name, "mnist")):
        assert path.is_file(), f"{path} is missing: publish the run with python -m flmn_core.publish"
    assert zoo.weights_path(name).stat().st_size < 10 << 20, "a shipped checkpoint must stay small"


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_loads_as_plain_data_and_matches_its_zoo_entry(name):
    payload = torch.load(zoo.weights_path(name), map_location="cpu", weights_only=True)
    assert "training" not in payload, "no optimizer state in a shipped checkpoint"
    entry = next(e for e in zoo.CHECKPOINTS if e.name == name)
    assert payload["model"] == entry.model
    assert payload["metrics"]["train_args"]["experiment"] == entry.experiment
    model = load_model(zoo.weights_path(name))
    assert not model.training


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_is_regenerated_identically_from_the_files(name):
    assert card_markdown(name) == zoo.card_path(name).read_text(), \
        f"{zoo.card_path(name)} is stale: run python -m flmn_core.publish --cards-only"


def test_readme_results_are_regenerated_from_the_files():
    text = README.read_text()
    section = text.split(README_START)[1].split(README_END)[0]
    assert section.strip() == results_markdown().strip(), \
        "README's results are stale: run python -m flmn_core.publish --cards-only --readme README.md"


@pytest.mark.parametrize("name", ["flmn-exp1", "mann-exp1"])
def test_stored_test_accuracy_is_reproduced_by_a_fresh_evaluation(name, omniglot):
    """Re-evaluate the first 500 of the stored result's episodes (same seed, so the same episodes) and
    check that the 2nd-instance accuracy agrees with the stored 10,000-episode figure within its spread."""
    stored = json.loads(zoo.result_path(name, "omniglot").read_text())
    fresh = evaluate_model(load_model(zoo.weights_path(name)), omniglot.images, 500, stored["seed"],
                           characters=split_indices("test"))
    tolerance = 4 * stored["ci95"][1] * (stored["episodes"] / 500) ** 0.5 / 1.96 + 1e-6
    assert abs(fresh["accuracy"][1] - stored["accuracy"][1]) < tolerance
