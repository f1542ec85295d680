"""The checkpoints in checkpoints/ are what zoo, their model cards and README say they are."""

import json
import re
from pathlib import Path

import pytest
import torch

from flmn_core import load_model, split_indices
from flmn_core.model import zoo
from flmn_core.model.networks import MODELS
from flmn_core.results import markdown, paper, report, targets
from flmn_core.results.cards import card_markdown
from flmn_core.training import runlog
from flmn_core.training.config import read_config_file
from flmn_core.training.evaluate import evaluate_model

SHIPPED = [entry.name for entry in zoo.CHECKPOINTS]
README = Path(__file__).resolve().parents[1] / "README.md"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def payload_of(name):
    return torch.load(zoo.weights_path(name), map_location="cpu", weights_only=True)


def test_zoo_lists_each_checkpoint_once_with_a_known_model_and_experiment():
    assert len(set(SHIPPED)) == len(SHIPPED)
    assert all(entry.model in MODELS and entry.experiment in ("I", "II") for entry in zoo.CHECKPOINTS)
    # The app's sidebar offers the first of each model by default: the retrieving FLMN.
    assert next(entry.name for entry in zoo.CHECKPOINTS if entry.model == "flmn") == "flmn-conv"


@pytest.mark.parametrize("name", SHIPPED)
def test_each_checkpoint_is_shipped_with_card_results_and_log(name):
    entry = zoo.entry(name)
    results = [zoo.result_path(name, dataset, classes=classes) for dataset, classes in zoo.evaluations(entry)]
    probes = [zoo.result_path(name, "omniglot", classes=classes, memory_rows=rows)
              for classes, rows in zoo.memory_probes(entry)]
    for path in (zoo.weights_path(name), zoo.card_path(name), zoo.log_path(name), *results, *probes):
        assert path.is_file(), f"{path} is missing: publish the run with flmn publish"
    assert zoo.weights_path(name).stat().st_size < zoo.MAX_WEIGHTS_BYTES, "a shipped checkpoint must stay small"
    lines = zoo.log_path(name).read_text().splitlines()
    assert len(runlog.read(zoo.log_path(name))) == len(lines) > 0, "every line of a shipped log is a record"


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_loads_as_plain_data_and_matches_its_zoo_entry(name):
    payload = payload_of(name)
    assert "training" not in payload, "no optimizer state in a shipped checkpoint"
    entry = zoo.entry(name)
    assert payload["model"] == entry.model
    config = read_config_file(zoo.weights_path(name))  # what `train --config` reads
    assert (config.model_name, config.experiment) == (entry.model, entry.experiment)
    model = load_model(zoo.weights_path(name))
    assert not model.training


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_is_regenerated_identically_from_the_files(name):
    card = card_markdown(name)
    assert card == zoo.card_path(name).read_text(), \
        f"{zoo.card_path(name)} is stale: run flmn publish --cards-only"
    assert not re.search(r"issue", card, re.IGNORECASE)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_result_measures_retrieval(name):
    for dataset in zoo.DATASETS:
        result = report.load_result(name, dataset)
        assert result is not None and result.get("retrieval") is not None, f"{name} on {dataset}: evaluate it again"


def card_row(card, dataset):
    """The checkpoint's own row in a card's accuracy table for dataset (the tables' bold titles begin with
    the dataset's name)."""
    part = card.split(f"**{report.DATASET_NAMES[dataset]}")[1]
    line = next(line for line in part.splitlines() if re.match(r"\| `[^`]+` \|", line))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_cards_numbers_are_those_of_the_result_files(name):
    card = zoo.card_path(name).read_text()
    for dataset in zoo.DATASETS:
        result = report.load_result(name, dataset)
        assert card_row(card, dataset) == [
            f"`{name}`", f"this checkpoint, {report.episodes_text(result)}, seed {result['seed']}"] + [
            markdown.percent(result["accuracy"][k - 1], result["ci95"][k - 1]) for k in paper.TABLE_INSTANCES]


@pytest.mark.parametrize("name", [entry.name for entry in zoo.CHECKPOINTS if entry.memory_probe])
def test_the_cards_memory_table_holds_each_memory_size_measured(name):
    entry = zoo.entry(name)
    section = zoo.card_path(name).read_text().split("## The memory's size")[1].split("\n## ")[0]
    trained = read_config_file(zoo.weights_path(name)).model.memory_rows
    for rows in (trained, *entry.memory_probe):
        result = report.load_result(name, "omniglot", classes=max(entry.classes),
                                    memory_rows=None if rows == trained else rows)
        size = report.memory_rows_text(entry.model, rows)
        line = next(line for line in section.splitlines() if line.startswith(f"| {size}"))
        assert markdown.percent(result["accuracy"][1], result["ci95"][1]) in line
        assert result["memory_rows"] == rows


@pytest.mark.parametrize("run", [run for run in zoo.FOLLOW_UPS if run.tested], ids=lambda run: run.name)
def test_the_cards_test_table_holds_each_tested_follow_up(run):
    card = zoo.card_path(run.variant).read_text()
    lines = [line for line in card.splitlines() if line.startswith(f"| `{run.name}` |")]
    for rotate in run.tested:
        result = report.read_result(zoo.probe_result_path(run.name, rotate=rotate), "omniglot")
        assert result["rotate"] == rotate
        shown = markdown.percent(result["accuracy"][1], result["ci95"][1])
        assert any(shown in line and ("as drawn" if not rotate else f"±{rotate:g}°") in line for line in lines)


@pytest.mark.parametrize("name", [entry.name for entry in zoo.CHECKPOINTS if entry.follows])
def test_a_checkpoint_that_follows_another_is_in_that_ones_test_table(name):
    card = zoo.card_path(zoo.entry(name).follows).read_text()
    result = report.load_result(name, "omniglot")
    line = next(line for line in card.splitlines() if line.startswith(f"| `{name}` |") and "drawn" in line)
    assert markdown.percent(result["accuracy"][1], result["ci95"][1]) in line


def test_the_minimnist_checkpoint_is_the_best_candidate_on_the_digits_kept_for_choices():
    """Among the shipped FLMNs and the runs that tried another stroke widening (zoo Probe.selects)."""
    chosen = next(t.checkpoints for t in targets.TARGETS if t.dataset == "mnist")
    flmns = {c.name for c in zoo.CHECKPOINTS if c.model == "flmn"} | {p.name for p in zoo.FOLLOW_UPS if p.selects}
    candidates = {name: result for name, result in report.selection_results().items() if name in flmns}
    assert len(candidates) >= 2 and all(result["mnist_half"] == "select" for result in candidates.values())
    assert chosen == (max(candidates, key=lambda name: candidates[name]["accuracy"][1]),)


def test_the_15_label_flmn_at_5_classes_is_held_to_flmn_conv_less_2_points():
    conv = report.load_result("flmn-conv", "omniglot")
    target = next(t for t in targets.TARGETS if "flmn-15" in t.checkpoints and t.classes == zoo.PAPERS_CLASSES)
    assert target.accuracy[2] == pytest.approx(round(100 * conv["accuracy"][1], 1) - 2)


@pytest.mark.parametrize("path, generate", [(README, report.summary_markdown), (RESULTS, report.results_markdown)],
                         ids=["README", "docs-results"])
def test_readme_results_are_regenerated_from_the_files(path, generate):
    text = path.read_text()
    section = text.split(report.README_START)[1].split(report.README_END)[0]
    assert section.strip() == generate().strip(), \
        f"{path.name}'s results are stale: run flmn report --readme README.md --results docs/results.md"


@pytest.mark.parametrize("name", ["flmn-exp1", "mann-exp1"])
def test_stored_test_accuracy_is_reproduced_by_a_fresh_evaluation(name, omniglot):
    """Re-evaluate the first 500 of the stored result's episodes (same seed, so the same episodes) and
    check that the 2nd-instance accuracy, and retrieval where the result holds it, agree with the stored
    10,000-episode figures within their spread."""
    stored = json.loads(zoo.result_path(name, "omniglot").read_text())
    fresh = evaluate_model(load_model(zoo.weights_path(name)), omniglot.images, 500, stored["seed"],
                           characters=split_indices("test"))
    spread = (stored["episodes"] / 500) ** 0.5 / 1.96  # from the stored 95% half-width to 500 episodes' sd
    assert abs(fresh["accuracy"][1] - stored["accuracy"][1]) < 4 * stored["ci95"][1] * spread + 1e-6
    for measure in ("top_hit", "mass"):
        tolerance = 4 * stored["retrieval"][f"{measure}_ci95"] * spread + 1e-6
        assert abs(fresh["retrieval"][measure] - stored["retrieval"][measure]) < tolerance
