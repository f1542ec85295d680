"""Publishing a run: a real dry-run training run published into a temporary checkpoint folder by the real
command line, every shipped file read back, and the card's training command run to train it again; the
log, schedule and staging helpers on hand-built input.

Nothing here writes into the repository's checkpoints/: the subprocesses get --checkpoint-dir and, in case
that were ignored, FLMN_CHECKPOINT_DIR pointing at another temporary folder that must stay empty.
"""

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flmn_core.model import zoo
from flmn_core.model.checkpoint import (
    atomic_torch_save,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from flmn_core.model.configs import FLMNConfig
from flmn_core.model.networks import FLMN, build_model
from flmn_core.results import cards, markdown, paper, publish, report, targets
from flmn_core.training import evaluate, runlog
from flmn_core.training.config import TrainConfig, learning_rate, read_config_file

ROOT = Path(__file__).resolve().parents[1]
NAME = "flmn-exp1"
EPISODES = 20


def run_module(module_args, cwd, data_dir, stray_root):
    """python -m MODULE_ARGS in cwd with the real data -> CompletedProcess (fails the test on a non-zero exit)."""
    env = {**os.environ, "FLMN_DATA_DIR": str(Path(data_dir).resolve()), "FLMN_CHECKPOINT_DIR": str(stray_root),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", *module_args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def published(tmp_path_factory, data_dir):
    """A dry-run training run, published as NAME with EPISODES evaluation episodes into base/checkpoints,
    laid out as the repository is (so the card's commands run from base as they would from the checkout)."""
    base = tmp_path_factory.mktemp("publish")
    stray = base / "stray-checkpoints"
    run_module(["flmn_core", "train", "--dry-run", "--out", "run", "--threads", "1"], base, data_dir, stray)
    root = base / zoo.FOLDER
    root.mkdir()
    done = run_module(["flmn_core", "publish", "--run", "run", "--name", NAME, "--episodes", str(EPISODES),
                       "--checkpoint-dir", str(root)], base, data_dir, stray)
    return SimpleNamespace(base=base, run=base / "run", root=root, stray=stray, stderr=done.stderr)


def result_of(published, dataset):
    return json.loads((published.root / "results" / f"{NAME}-{dataset}.json").read_text())


def card_of(published):
    return (published.root / f"{NAME}.md").read_text()


def shipped_of(published):
    return load_checkpoint(published.root / f"{NAME}.pt")


def cells_of(text, first_cells):
    """The cells of the table row of text that begins with first_cells."""
    start = "| " + " | ".join(first_cells) + " |"
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_published_weights_are_best_pt_without_training_state_with_its_config(published):
    source = load_checkpoint(published.run / "best.pt")
    shipped = shipped_of(published)
    assert "training" not in shipped
    assert shipped["step"] == source["step"] and shipped["config"] == source["config"]
    assert shipped["state_dict"].keys() == source["state_dict"].keys()
    assert all(torch.equal(shipped["state_dict"][k], v) for k, v in source["state_dict"].items())
    assert shipped["metrics"] == source["metrics"] and "validation" in shipped["metrics"]
    assert shipped["train_config"] == source["train_config"]
    # What `train --config NAME.pt` reads back: the dry run's own settings, not the defaults.
    config = read_config_file(published.root / f"{NAME}.pt")
    assert config == TrainConfig.from_dict(json.loads((published.run / "config.json").read_text()))
    assert config.episodes == 16 and config.model.controller_size == 16
    assert isinstance(load_model(published.root / f"{NAME}.pt"), FLMN)
    assert (published.root / f"{NAME}.pt").stat().st_size < zoo.MAX_WEIGHTS_BYTES
    assert not published.stray.exists()  # --checkpoint-dir was obeyed
    assert "loads" in published.stderr and f"wrote {published.root / NAME}.md" in published.stderr
    assert not list(published.root.glob(".*"))  # no staged or temporary file left behind


def test_results_are_what_an_independent_evaluation_writes(published, data_dir, tmp_path):
    for dataset in zoo.DATASETS:
        shipped = result_of(published, dataset)
        assert len(shipped["accuracy"]) == 10 and all(0 <= a <= 1 for a in shipped["accuracy"])
        assert shipped["episodes"] == EPISODES and shipped["seed"] == 0 and shipped["dataset"] == dataset
        independent = tmp_path / f"{dataset}.json"
        evaluate.main(["--checkpoint", str(published.root / f"{NAME}.pt"), "--dataset", dataset, "--episodes",
                       str(EPISODES), "--seed", "0", "--data-dir", str(data_dir), "--json", str(independent)])
        again = json.loads(independent.read_text())
        assert shipped.keys() == again.keys()
        assert shipped["accuracy"] == again["accuracy"] and shipped["ci95"] == again["ci95"]
        assert shipped["retrieval"] == again["retrieval"]
        assert report.load_result(NAME, dataset, published.root)["accuracy"] == shipped["accuracy"]


def card_part(card, dataset):
    """The part of a card's accuracy section about one dataset."""
    return card.split(f"**{report.DATASET_TITLES[dataset]}**")[1].split("**")[0].split("## ")[0]


def test_the_cards_accuracy_is_that_of_the_files(published):
    card = card_of(published)
    assert card.splitlines()[0].startswith("<!-- Generated by flmn_core.results.publish") and "do not edit" in card.splitlines()[0]
    for dataset in zoo.DATASETS:
        result, part = result_of(published, dataset), card_part(card, dataset)
        assert cells_of(part, [f"`{NAME}`"])[1:] == [f"this checkpoint, {report.episodes_text(result)}, seed 0"] + [
            markdown.percent(result["accuracy"][k - 1], result["ci95"][k - 1]) for k in paper.TABLE_INSTANCES]
    validation = shipped_of(published)["metrics"]["validation"]
    config = read_config_file(published.root / f"{NAME}.pt")
    row = cells_of(card_part(card, "omniglot"), [f"`{NAME}`, validation"])
    assert row[1] == f"{config.val_episodes} episodes of the validation alphabets, at training episode {validation['episode']}"
    assert row[2:] == [markdown.percent(validation["accuracy"][k - 1]) for k in paper.TABLE_INSTANCES]
    assert "| FLMN, Exp. I | Mureja et al. 2017, Table 1 | 31.1 | 85.6 | 88.7 |" in card_part(card, "omniglot")
    goal = next(t for t in targets.TARGETS if t.dataset == "omniglot" and NAME in t.checkpoints).accuracy
    assert f"| target: reproduce the paper's FLMN, Exp. I | the project's targets | {goal[1]:g} | {goal[2]:g} |" in card
    reached = cells_of(card_part(card, "omniglot"), ["reached?"])
    assert reached[2] == f"{100 * result_of(published, 'omniglot')['accuracy'][0]:.2f} < {goal[1]:g}"
    assert "issue" not in card.lower()


def test_the_cards_retrieval_is_that_of_the_files(published):
    card = card_of(published)
    section = card.split("## Retrieval")[1].split("## ")[0]
    for dataset in zoo.DATASETS:
        retrieval = result_of(published, dataset)["retrieval"]
        assert cells_of(section, [report.DATASET_NAMES[dataset]])[2:] == [
            markdown.percent(retrieval["top_hit"], retrieval["top_hit_ci95"]),
            markdown.number(retrieval["mass"], retrieval["mass_ci95"])]
    validation = shipped_of(published)["metrics"]["validation"]["retrieval"]
    assert cells_of(section, ["Omniglot, validation"])[2:] == [
        markdown.percent(validation["top_hit"], validation["top_hit_ci95"]),
        markdown.number(validation["mass"], validation["mass_ci95"])]
    assert "target" not in section  # NAME's target only reports retrieval: no goal to show


def test_the_card_says_how_long_it_trained_and_how_it_was_chosen(published):
    card, shipped = card_of(published), shipped_of(published)
    cpu = shipped["metrics"]["cpu_seconds"]
    assert f"| trained | {shipped['step']:,} episodes, {cpu / 60:.1f} min of CPU time |" in card
    overall = markdown.percent(shipped["metrics"]["validation"]["overall_accuracy"])
    assert f"at episode {shipped['metrics']['validation']['episode']:,}: {overall}% |" in card
    last = runlog.read(published.run / "log.jsonl")[-1]
    configured = read_config_file(published.root / f"{NAME}.pt").episodes
    assert (f"The run trained {last['episode']:,} episodes of the {configured:,} configured, in {last['cpu_seconds'] / 60:.1f} "
            f"min of CPU time; this checkpoint is its `best.pt`, from episode {shipped['step']:,}.") in card
    assert "Learning rate: as configured (constant 0.001); checked at the 1 logged step up to this checkpoint." in card
    for dataset in zoo.DATASETS:
        assert (f"flmn evaluate --checkpoint checkpoints/{NAME}.pt --dataset {dataset} "
                f"--episodes {EPISODES} --seed 0") in card


@pytest.mark.parametrize("split, named, unnamed", [
    ("alphabets", "of the alphabets held out of training (Blackfoot", "drawn at random"),
    ("random", "of 129 characters held out of training, drawn at random", "Blackfoot"),
])
def test_the_card_names_what_the_run_was_validated_on_by_its_split(split, named, unnamed):
    """A run on the random split is validated on characters of every alphabet: its card must not name the
    validation alphabets, which that run trained on."""
    config = TrainConfig(split=split)
    metrics = {"validation": {"episode": 20, "overall_accuracy": 0.5}}
    chosen = cards.selection(metrics, config)
    assert named in chosen and unnamed not in chosen
    assert cards.validation_unit(config) == ("characters" if split == "random" else "alphabets")


def test_the_card_lists_every_setting_with_the_default_it_changes(published):
    settings = card_of(published).split("## How it was trained")[1].split("## ")[0]
    config = read_config_file(published.root / f"{NAME}.pt")
    assert cells_of(settings, ["model"])[1:3] == ["`flmn`", ""]
    for owner in (config.model, config):
        for field in dataclasses.fields(owner):
            if field.name != "model":
                value = getattr(owner, field.name)
                default = f"`{field.default}`" if value != field.default else ""
                assert cells_of(settings, [field.name])[1:] == [f"`{value}`", default, field.metadata["help"]]
    assert cells_of(settings, ["controller_size"])[1:3] == ["`16`", "`200`"]  # the dry run's small model


def test_the_cards_command_trains_the_checkpoint_again(published, data_dir):
    card = card_of(published)
    block = card.split("## How it was trained")[1].split("```sh\n")[1].split("```")[0]
    assert block == f"flmn train --config checkpoints/{NAME}.pt --out runs/{NAME}\n"
    words = shlex.split(block)
    assert words[:2] == ["flmn", "train"]
    # `flmn` is `python -m flmn_core`. One thread, as the dry run had: it is a process option, not part of the
    # config, and the machine is shared.
    run_module(["flmn_core"] + words[1:] + ["--threads", "1"], published.base, data_dir, published.stray)
    again = load_checkpoint(published.base / "runs" / NAME / "best.pt")
    shipped = shipped_of(published)
    assert again["step"] == shipped["step"] and again["train_config"] == shipped["train_config"]
    assert all(torch.equal(again["state_dict"][k], v) for k, v in shipped["state_dict"].items())


def test_the_shipped_log_is_the_runs_log_rounded(published):
    run_log = runlog.read(published.run / "log.jsonl")
    shipped = report.load_log(NAME, published.root)
    assert len(shipped) == len(run_log) > 0
    for ours, theirs in zip(shipped, run_log):
        assert ours["kind"] == theirs["kind"] and ours["episode"] == theirs["episode"]
        assert ours["loss"] == round(theirs["loss"], 4)
        assert ours["accuracy"] == [round(a, 4) for a in theirs["accuracy"]]
        if theirs["kind"] == "validation":
            assert ours["retrieval"] == {k: round(v, 4) for k, v in theirs["retrieval"].items()}


def test_cards_only_rewrites_identical_cards_and_the_readme(published, data_dir, tmp_path):
    before = {path.relative_to(published.root): path.read_bytes() for path in published.root.rglob("*") if path.is_file()}
    readme = tmp_path / "README.md"
    readme.write_text(f"# FLMN\n\n{report.README_START}\nOLD SECTION\n{report.README_END}\n")
    run_module(["flmn_core", "publish", "--cards-only", "--checkpoint-dir", str(published.root), "--results", str(readme)],
               published.base, data_dir, published.stray)
    after = {path.relative_to(published.root): path.read_bytes() for path in published.root.rglob("*") if path.is_file()}
    assert after == before  # the card byte for byte, and nothing else touched
    text = readme.read_text()
    result = result_of(published, "omniglot")
    assert markdown.percent(result["accuracy"][0], result["ci95"][0]) in text and "OLD SECTION" not in text
    assert f"([model card](../checkpoints/{NAME}.md))" in text


def without_train_config(source, destination):
    """A copy of a checkpoint as written before checkpoints held their training config."""
    payload = load_checkpoint(source)
    del payload["train_config"]
    atomic_torch_save(payload, destination)


def test_cards_only_names_weights_it_cannot_describe_and_writes_the_rest(published, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(published.root, root)
    (root / f"{NAME}.md").unlink()
    without_train_config(published.run / "best.pt", root / "flmn-exp2.pt")
    errors = publish.publish_cards(root)
    assert len(errors) == 1 and errors[0].startswith("flmn-exp2:") and "no training config" in errors[0]
    assert "--run RUN --name flmn-exp2" in errors[0]
    assert (root / f"{NAME}.md").read_bytes() == (published.root / f"{NAME}.md").read_bytes()
    assert not (root / "flmn-exp2.md").exists()


def test_a_card_without_results_says_not_evaluated(published, tmp_path):
    shutil.copy(published.root / f"{NAME}.pt", tmp_path / f"{NAME}.pt")
    card = cards.card_markdown(NAME, tmp_path)
    assert card.count(f"| `{NAME}` | not evaluated | – |") == len(zoo.DATASETS)
    assert card.count("| not evaluated | – | – |") == 2 * len(zoo.DATASETS)  # and the retrieval rows
    assert "reached?" not in card and "Not evaluated yet" in card
    assert "Learning rate" not in card and "The run trained" not in card  # no log to tell


def test_training_state_in_best_pt_is_not_shipped(published, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(published.run, run)
    shutil.copy(run / "last.pt", run / "best.pt")  # a best.pt that carries optimizer state
    assert "training" in load_checkpoint(run / "best.pt")
    publish.write_weights(publish.shippable_payload(run, NAME), NAME, tmp_path / "checkpoints")
    assert "training" not in load_checkpoint(tmp_path / "checkpoints" / f"{NAME}.pt")


@pytest.mark.parametrize("name, message", [("mann-exp1", "is a MANN checkpoint"),
                                           ("flmn-exp2", "is for Experiment II")])
def test_a_run_of_another_model_or_experiment_is_refused(published, tmp_path, name, message):
    with pytest.raises(SystemExit) as stopped:
        publish.main(["--run", str(published.run), "--name", name, "--checkpoint-dir", str(tmp_path)])
    assert message in str(stopped.value.code)
    assert list(tmp_path.iterdir()) == []


def test_a_best_pt_without_a_training_config_is_refused(published, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(published.run, run)
    without_train_config(published.run / "best.pt", run / "best.pt")
    root = tmp_path / "checkpoints"
    root.mkdir()
    with pytest.raises(SystemExit) as stopped:
        publish.main(["--run", str(run), "--name", NAME, "--checkpoint-dir", str(root)])
    assert "best.pt holds no training config" in str(stopped.value.code)
    assert list(root.iterdir()) == []


def test_a_run_without_best_pt_is_refused_with_its_name(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit) as stopped:
        publish.main(["--run", str(tmp_path / "run"), "--name", NAME, "--checkpoint-dir", str(tmp_path)])
    assert "best.pt: no such file" in str(stopped.value.code)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_skip_eval_without_results_is_refused_before_writing(published, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        publish.main(["--run", str(published.run), "--name", NAME, "--skip-eval", "--checkpoint-dir", str(tmp_path)])
    assert "--skip-eval" in str(stopped.value.code) and "does not exist" in str(stopped.value.code)
    assert list(tmp_path.iterdir()) == []


def test_the_card_lists_each_missed_goal_and_what_the_log_shows(published):
    """A dry run misses every accuracy goal of NAME's targets: the card lists each with its number, then the
    validation log's best and last figures at the first instance missed."""
    card = card_of(published)
    section = card.split("## Where a target is missed")[1].split("## ")[0]
    missed = []
    for target in targets.TARGETS:
        if NAME in target.checkpoints:
            result = result_of(published, target.dataset)
            for k, goal in target.accuracy.items():
                shown = report.goal_cell(100 * result["accuracy"][k - 1], goal, 2)
                line = f"- {target.name}, {report.DATASET_NAMES[target.dataset]}, {markdown.ordinal(k)} instance: {shown}"
                assert (line in section) == ("<" in shown), line
                missed += [k] if "<" in shown else []
    first = missed[0]
    validations = [r for r in runlog.read(published.run / "log.jsonl") if r["kind"] == "validation"]
    peak = max(validations, key=lambda r: r["accuracy"][first - 1])
    assert (f"its best was {markdown.percent(peak['accuracy'][first - 1])}% at episode {peak['episode']:,}; at the last "
            f"validation, episode {validations[-1]['episode']:,} of the 16 configured") in section


def test_the_runs_end_ships_with_its_last_validation_and_the_card_says_so(published, tmp_path):
    """--weights last.pt: the run's last checkpoint, chosen as the end of the run, not by validation."""
    root = tmp_path / "checkpoints"
    shutil.copytree(published.root, root)
    publish.main(["--run", str(published.run), "--name", NAME, "--weights", "last.pt", "--skip-eval",
                  "--checkpoint-dir", str(root)])
    shipped, last = load_checkpoint(root / f"{NAME}.pt"), load_checkpoint(published.run / "last.pt")
    assert "training" not in shipped and shipped["step"] == last["step"]
    assert all(torch.equal(shipped["state_dict"][k], v) for k, v in last["state_dict"].items())
    final = [r for r in runlog.read(published.run / "log.jsonl") if r["kind"] == "validation"][-1]
    assert shipped["metrics"]["validation"] == final and shipped["metrics"]["selected"] == "last"
    card = (root / f"{NAME}.md").read_text()
    assert (f"| selected by | the end of the run (`publish --weights last.pt`), at episode {last['step']:,}; its overall "
            f"accuracy on") in card
    assert f"this checkpoint is its `last.pt`, from episode {last['step']:,}." in card


def test_a_last_pt_between_validations_is_refused(published, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(published.run, run)
    records = runlog.read(run / "log.jsonl")
    runlog.write(run / "log.jsonl", records[:-1] if records[-1]["kind"] == "validation" else
                 [r for r in records if not (r["kind"] == "validation" and r["episode"] == records[-1]["episode"])])
    with pytest.raises(SystemExit) as stopped:
        publish.main(["--run", str(run), "--name", NAME, "--weights", "last.pt", "--checkpoint-dir", str(tmp_path)])
    assert "has no validation" in str(stopped.value.code)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_skip_eval_reuses_the_results(published, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(published.root, root)
    (root / f"{NAME}.pt").unlink()
    (root / f"{NAME}.md").unlink()
    publish.main(["--run", str(published.run), "--name", NAME, "--skip-eval", "--checkpoint-dir", str(root)])
    assert (root / "results" / f"{NAME}-omniglot.json").read_bytes() == \
        (published.root / "results" / f"{NAME}-omniglot.json").read_bytes()
    assert load_checkpoint(root / f"{NAME}.pt")["step"] == load_checkpoint(published.run / "best.pt")["step"]
    # The card is generated from the same files, so it is the same card (the weights hash included).
    assert (root / f"{NAME}.md").read_text() == card_of(published)


def test_a_probes_log_ships_alone_with_its_training_config(published, data_dir):
    probe = zoo.FOLLOW_UPS[0].name
    run_module(["flmn_core", "publish", "--run", "run", "--probe", probe, "--checkpoint-dir", str(published.root)],
               published.base, data_dir, published.stray)
    records = runlog.read(zoo.probe_log_path(probe, published.root))
    config = read_config_file(published.run / "config.json")
    assert records == [{"kind": "config", "episode": 0, "config": config.to_dict()},
                       *runlog.trimmed(runlog.read(published.run / "log.jsonl"))]
    assert not (published.root / f"{probe}.pt").exists() and not (published.root / f"{probe}.md").exists()


def test_a_probe_that_tries_a_choice_for_mnist_is_evaluated_on_the_digits_kept_for_it(published, data_dir, tmp_path):
    probe = next(p for p in zoo.FOLLOW_UPS if p.selects)
    root = tmp_path / zoo.FOLDER
    shutil.copytree(published.root, root)
    run_module(["flmn_core", "publish", "--run", "run", "--probe", probe.name, "--episodes", str(EPISODES),
                "--checkpoint-dir", str(root)], published.base, data_dir, published.stray)
    result = report.read_result(zoo.selection_path(probe.name, root), "mnist", mnist_half="select")
    assert result["episodes"] == EPISODES and result["checkpoint"].endswith("best.pt")
    assert report.selection_results(root)[probe.name] == result
    assert f"run `{probe.name}` (its best.pt, not shipped)" in report.selection_markdown(root)
    widening = read_config_file(published.run / "config.json").widen_strokes
    other = dataclasses.replace(read_config_file(published.run / "config.json"), experiment="II",
                                widen_strokes=widening + 3)
    chosen = cards.widening_choice(other, {probe.name: result}, root)
    assert f"widens by up to {widening:g} pixels: not the widening this checkpoint was trained with" in chosen
    assert not (root / f"{probe.name}.pt").exists()


def test_a_warm_started_probes_log_ships_from_its_last_warm_start(published, tmp_path):
    shutil.copy(published.run / "config.json", tmp_path / "config.json")
    runlog.write(tmp_path / "log.jsonl", [record("train", 1000), {"kind": "warm_start", "episode": 2000},
                                          record("train", 3000), {"kind": "warm_start", "episode": 3000},
                                          record("train", 4000), record("validation", 4000)])
    records = publish.probe_log(tmp_path)
    assert records[0]["kind"] == "config" and [(r["kind"], r["episode"]) for r in records[1:]] == [
        ("warm_start", 3000), ("train", 4000), ("validation", 4000)]
    (tmp_path / "config.json").unlink()
    with pytest.raises(publish.PublishError, match="config.json"):
        publish.probe_log(tmp_path)


def test_command_line_options_that_do_not_go_together_are_refused():
    for argv in (["--cards-only", "--run", "runs/x"], ["--run", "runs/x"], ["--run", "r", "--name", "no-such"],
                 ["--probe", zoo.FOLLOW_UPS[0].name], ["--run", "r", "--probe", "no-such"],
                 ["--run", "r", "--name", NAME, "--probe", zoo.FOLLOW_UPS[0].name]):
        with pytest.raises(SystemExit) as stopped:
            publish.parse_args(argv)
        assert stopped.value.code == 2


@pytest.mark.parametrize("option, value", [("--threads", "0"), ("--episodes", "0"), ("--seed", "-1"),
                                           ("--seed", str(2**70)), ("--threads", "two")])
def test_a_bad_value_is_refused_naming_its_option(option, value, capsys):
    with pytest.raises(SystemExit) as stopped:
        publish.parse_args(["--cards-only", option, value])
    assert stopped.value.code == 2 and option in capsys.readouterr().err


# ---- helpers on hand-built input ----------------------------------------------------------------------

def record(kind, episode, value=0.123456789):
    return {"kind": kind, "episode": episode, "loss": value, "accuracy": [value] * 10, "lr": 0.00099958667,
            "cpu_seconds": episode / 7, "unused": "dropped"}


def test_rounding_keeps_four_decimals_and_the_learning_rates_digits():
    assert runlog.rounded("loss", 0.123456789) == 0.1235
    assert runlog.rounded("accuracy", [0.33333, 1.0]) == [0.3333, 1.0]
    assert runlog.rounded("retrieval", {"mass": 0.123456, "top_hit_ci95": 0.0012345}) == \
        {"mass": 0.1235, "top_hit_ci95": 0.0012}
    assert runlog.rounded("lr", 0.00099958667) == 0.0009996
    assert runlog.rounded("lr", 5e-5) == 5e-5
    assert runlog.rounded("loss", float("nan")) != runlog.rounded("loss", float("nan"))  # NaN stays NaN
    assert runlog.rounded("episode", 1234) == 1234


def test_a_long_log_is_thinned_to_the_budget_keeping_validation_and_the_end():
    records = [record("train", e) for e in range(1000, 3_000_001, 1000)]
    records += [record("validation", e) for e in range(10_000, 3_000_001, 10_000)]
    trimmed = runlog.trimmed(records)
    size = sum(len(runlog.line(r).encode()) for r in trimmed)
    assert size <= runlog.SHIPPED_BUDGET
    kept_train = [r["episode"] for r in trimmed if r["kind"] == "train"]
    assert len([r for r in trimmed if r["kind"] == "validation"]) == 300
    assert kept_train[0] == 1000 and kept_train[-1] == 3_000_000
    steps = {b - a for a, b in zip(kept_train[:-2], kept_train[1:-1])}
    assert len(steps) == 1 and steps.pop() > 1000  # evenly thinned
    assert set(trimmed[0]) == {"kind", "episode", "loss", "accuracy", "lr", "cpu_seconds"}
    assert len(runlog.trimmed(records[:50])) == 50  # a small log is kept whole


def cosine_log(episodes, until):
    """Training records whose lr follows a cosine run of `episodes` episodes, batch 16, as logged and shipped."""
    config = TrainConfig(lr_schedule="cosine", episodes=episodes)
    return [{"kind": "train", "episode": e, "lr": runlog.rounded("lr", learning_rate(config, e - 16))}
            for e in range(4000, until + 1, 4000)]


def test_a_schedule_changed_on_resume_is_found_in_the_logged_rates():
    config = TrainConfig(lr_schedule="cosine", episodes=300_000)
    followed = cards.schedule_note(config, cosine_log(300_000, 300_000), 300_000)
    assert followed.startswith("Learning rate: as configured (cosine from 0.001 to 5e-05 over 300,000 episodes)")
    assert "the 75 logged steps" in followed
    extended = cosine_log(100_000, 100_000) + cosine_log(300_000, 300_000)[25:]  # --resume --episodes 300000
    note = cards.schedule_note(config, extended, 300_000)
    assert "not as configured" in note
    episode = int(re.search(r"At episode ([\d,]+)", note).group(1).replace(",", ""))
    assert 4000 < episode <= 100_000
    assert cards.schedule_note(config, extended, 4000).startswith("Learning rate: as configured")  # before it
    constant = TrainConfig()
    assert "as configured (constant 0.001)" in cards.schedule_note(constant, [{"kind": "train", "episode": 4000,
                                                                               "lr": 1e-3}], 4000)
    assert "not as configured" in cards.schedule_note(constant, [{"kind": "train", "episode": 4000, "lr": 5e-4}], 4000)
    assert cards.schedule_note(constant, [{"kind": "train", "episode": 4000}], 4000) is None  # no rates logged


def test_a_staged_copy_is_checked_for_its_weights_config_and_size(tmp_path):
    config = TrainConfig(model=FLMNConfig(controller_size=16, memory_rows=8, word_size=8))
    model = build_model("flmn", **dataclasses.asdict(config.model))
    save_checkpoint(tmp_path / "a.pt", model, 0, train_config=config.to_dict())
    payload = load_checkpoint(tmp_path / "a.pt")
    publish.check_staged_weights(tmp_path / "a.pt", payload)
    changed = {**payload, "state_dict": {k: v + 1 for k, v in payload["state_dict"].items()}}
    with pytest.raises(publish.PublishError, match="weights differ"):
        publish.check_staged_weights(tmp_path / "a.pt", changed)
    other = {**payload, "train_config": dataclasses.replace(config, lr=0.5).to_dict()}
    with pytest.raises(publish.PublishError, match="training config differs"):
        publish.check_staged_weights(tmp_path / "a.pt", other)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zoo, "MAX_WEIGHTS_BYTES", 1000)
        with pytest.raises(publish.PublishError, match="MB"):
            publish.check_staged_weights(tmp_path / "a.pt", payload)


def validation(episode, overall, second, top_hit=0.9):
    return {"kind": "validation", "episode": episode, "overall_accuracy": overall, "accuracy": [0.3, second] + [0.95] * 8,
            "retrieval": {"top_hit": top_hit, "mass": 0.8}}


def test_the_runs_tried_since_a_variant_are_shown_at_their_best_validation_beside_its_run(tmp_path):
    variant = zoo.entry(zoo.FOLLOW_UPS[0].variant)
    config = TrainConfig(episodes=60_000)
    variant_log = [validation(20_000, 0.80, 0.84), validation(40_000, 0.85, 0.86)]
    tried = [run for run in zoo.FOLLOW_UPS if run.variant == variant.name]
    logs = {tried[0].name: [validation(20_000, 0.90, 0.81), validation(40_000, 0.88, 0.95), record("train", 50_000)]}
    logs.update({run.name: [record("train", 2000)] for run in tried[1:]})  # not validated yet
    for name, records in logs.items():
        path = zoo.probe_log_path(name, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        runlog.write(path, [{"kind": "config", "episode": 0, "config": TrainConfig(episodes=70_000).to_dict()}, *records])
    section = cards.follow_up_section(variant, config, variant_log, tmp_path)
    # its best is the best overall accuracy (at 20,000), not its best 2nd instance nor its latest
    assert cells_of(section, [f"`{tried[0].name}`"])[2:] == [
        "50,000 of 70,000 episodes", "20,000", "30.0", "81.0", "95.0", "95.0", "90.0%", "0.800", "84.0"]
    assert cells_of(section, [f"`{variant.name}`"])[2:5] == ["40,000 of 60,000 episodes", "40,000", "30.0"]
    for run in tried[1:]:
        assert cells_of(section, [f"`{run.name}`"])[2:4] == ["2,000 of 70,000 episodes", "not validated yet"]
