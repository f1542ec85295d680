"""The training tool end to end: `flmn train` in a real subprocess on the real Omniglot data.

Tiny model sizes keep each run to a few seconds; the last test trains FLMN at the paper's sizes until it
binds labels in memory (its 2nd-instance accuracy clearly above chance).
"""

import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flmn_core
import flmn_core.files
import flmn_core.training.config
import flmn_core.training.options
import flmn_core.training.runlock
import flmn_core.training.train
from flmn_core.training.metrics import INSTANCES

ROOT = Path(__file__).resolve().parents[1]
# A tiny model and short intervals: each step takes milliseconds, every schedule fires within a few steps.
TINY = ["--controller-size", "16", "--memory-rows", "8", "--word-size", "8", "--batch-size", "4",
        "--log-every", "8", "--val-every", "16", "--val-episodes", "8", "--threads", "1"]


def run_train(data_dir, *args, timeout=300):
    """Run `flmn train args` from the repository root -> CompletedProcess (text output)."""
    env = {**os.environ, "FLMN_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "flmn_core", "train", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def succeeded(result):
    """Assert a finished tool exited 0, showing its output when it did not."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def read_log(folder):
    """The records of folder/log.jsonl (each line must be one JSON object)."""
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def episodes_of(records, kind):
    """The episode numbers of the log records of one kind ("train" or "validation"), in file order."""
    return [record["episode"] for record in records if record["kind"] == kind]


def test_dry_run_writes_a_complete_run_folder(data_dir, omniglot, tmp_path):
    out = tmp_path / "run"
    succeeded(run_train(data_dir, "--dry-run", "--threads", "1", "--out", out))

    assert {"last.pt", "best.pt", "config.json", "log.jsonl"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["episodes"] == 16 and config["model"] == {"name": "flmn", "config": config["model"]["config"]}
    assert config["model"]["config"]["controller_size"] == 16
    records = read_log(out)
    assert episodes_of(records, "train") == [8, 16] and episodes_of(records, "validation") == [8, 16]
    for record in records:
        assert len(record["accuracy"]) == INSTANCES and all(0 <= a <= 1 for a in record["accuracy"])
        assert math.isfinite(record["loss"]) and record["cpu_seconds"] >= 0

    last = flmn_core.load_checkpoint(out / "last.pt")
    assert last["step"] == 16 and {"optimizer", "generator", "config"} <= set(last["training"])
    assert last["train_config"] == last["training"]["config"] == config  # `train --config last.pt` retrains it
    assert "training" not in flmn_core.load_checkpoint(out / "best.pt")  # the file to ship: weights only
    model = flmn_core.load_model(out / "best.pt")
    batch = flmn_core.sample_episodes(omniglot.images, 2, torch.Generator().manual_seed(0))
    logits = model(batch.images, batch.prev_labels)
    assert logits.shape == (2, 50, 5) and torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def split_and_straight(data_dir, tmp_path_factory):
    """Two runs of the same seed: 24 episodes then `--resume --episodes 48`, and 48 episodes straight.
    -> (resumed folder, straight folder)."""
    base = tmp_path_factory.mktemp("resume")
    resumed, straight = base / "resumed", base / "straight"
    succeeded(run_train(data_dir, *TINY, "--episodes", 24, "--seed", 3, "--out", resumed))
    succeeded(run_train(data_dir, "--resume", "--episodes", 48, "--threads", 1, "--out", resumed))
    succeeded(run_train(data_dir, *TINY, "--episodes", 48, "--seed", 3, "--out", straight))
    return resumed, straight


def test_resume_continues_from_the_saved_episode(split_and_straight):
    resumed, _ = split_and_straight
    assert flmn_core.load_checkpoint(resumed / "last.pt")["step"] == 48
    records = read_log(resumed)
    # One log across both processes: the resumed process picks up at episode 24 + one step of 4.
    assert episodes_of(records, "train") == [8, 16, 24, 32, 40, 48]
    assert episodes_of(records, "validation") == [16, 24, 32, 48]  # every 16 and at each process's end


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(split_and_straight):
    resumed, straight = (flmn_core.load_checkpoint(folder / "last.pt") for folder in split_and_straight)
    assert resumed["state_dict"].keys() == straight["state_dict"].keys()
    for name, weight in resumed["state_dict"].items():
        assert torch.equal(weight, straight["state_dict"][name]), f"{name} differs after resuming"
    # The optimizer's moments and the episode sampler continue bit for bit as well.
    resumed_moments, straight_moments = (run["training"]["optimizer"]["state"] for run in (resumed, straight))
    assert resumed_moments.keys() == straight_moments.keys()
    for key, moments in resumed_moments.items():
        for name, value in moments.items():
            assert torch.equal(value, straight_moments[key][name]), f"optimizer {name} of parameter {key} differs"
    assert torch.equal(resumed["training"]["generator"], straight["training"]["generator"])


def test_stop_after_cuts_a_run_at_a_validation_and_resume_finishes_its_schedule(split_and_straight, data_dir,
                                                                                tmp_path):
    out = tmp_path / "cut"
    succeeded(run_train(data_dir, *TINY, "--episodes", 48, "--seed", 3, "--stop-after", 32, "--out", out))
    assert flmn_core.load_checkpoint(out / "last.pt")["step"] == 32
    assert episodes_of(read_log(out), "validation") == [16, 32]  # last.pt is at a validation: publishable
    succeeded(run_train(data_dir, "--resume", "--threads", 1, "--out", out))
    finished, straight = (flmn_core.load_checkpoint(folder / "last.pt") for folder in (out, split_and_straight[1]))
    assert finished["step"] == 48
    for name, weight in finished["state_dict"].items():  # the cut changed nothing, the learning rate included
        assert torch.equal(weight, straight["state_dict"][name]), f"{name} differs after --stop-after"


@pytest.mark.slow
def test_sampling_ahead_trains_on_the_same_episodes(data_dir, tmp_path):
    """--sample-ahead (a second process samples the batches) changes when episodes are drawn, not which:
    split by a resume, with Experiment II's augmentation, it ends bit for bit where sampling in place ends."""
    ahead, in_place = tmp_path / "ahead", tmp_path / "in-place"
    settings = [*TINY, "--experiment", "II", "--widen-strokes", "7", "--seed", 5]
    succeeded(run_train(data_dir, *settings, "--episodes", 24, "--sample-ahead", "--out", ahead))
    succeeded(run_train(data_dir, "--resume", "--episodes", 48, "--threads", 1, "--sample-ahead", "--out", ahead))
    succeeded(run_train(data_dir, *settings, "--episodes", 48, "--out", in_place))
    ahead, in_place = (flmn_core.load_checkpoint(folder / "last.pt") for folder in (ahead, in_place))
    for name, weight in ahead["state_dict"].items():
        assert torch.equal(weight, in_place["state_dict"][name]), f"{name} differs"
    assert torch.equal(ahead["training"]["generator"], in_place["training"]["generator"])


def test_resume_of_a_moved_run_folder_writes_into_that_folder(data_dir, tmp_path):
    """Users copy a run folder to another disk or machine to continue it there."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    succeeded(run_train(data_dir, *TINY, "--episodes", 8, "--out", first))
    shutil.move(first, moved)
    succeeded(run_train(data_dir, "--resume", "--episodes", 16, "--threads", 1, "--out", moved))
    assert not first.exists(), "resuming wrote into the folder the run was moved away from"
    assert flmn_core.load_checkpoint(moved / "last.pt")["step"] == 16


@pytest.mark.parametrize("last_pt", ["missing", "random bytes", "weights only"])
def test_resume_without_a_usable_last_pt_names_the_file(data_dir, tmp_path, last_pt):
    out = tmp_path / "run"
    out.mkdir()
    if last_pt == "random bytes":
        (out / "last.pt").write_bytes(random.Random(0).randbytes(4096))
    elif last_pt == "weights only":  # best.pt copied over last.pt: a model without optimizer or RNG state
        model = flmn_core.build_model("flmn", controller_size=16, memory_rows=8, word_size=8, label_word_size=8)
        flmn_core.save_checkpoint(out / "last.pt", model, 8)
    result = run_train(data_dir, "--resume", "--out", out)
    assert result.returncode != 0
    assert "cannot resume" in result.stderr and str(out / "last.pt") in result.stderr


def test_flmn_learns_to_bind_labels_in_memory(data_dir, tmp_path):
    """FLMN at the paper's sizes, batch 16: after 5120 episodes the 2nd presentation of a class is recognised
    well above chance (0.2) on validation characters never trained on (seeds 0, 1, 2 gave 0.41-0.43)."""
    out = tmp_path / "run"
    succeeded(run_train(data_dir, "--episodes", 5120, "--lr", 5e-3, "--seed", 0, "--val-every", 5120,
                        "--val-episodes", 500, "--log-every", 1024, "--threads", 1, "--out", out, timeout=1800))
    records = read_log(out)
    assert episodes_of(records, "train") == [1024, 2048, 3072, 4096, 5120]
    validation = [r for r in records if r["kind"] == "validation"]
    assert [r["episode"] for r in validation] == [5120]
    assert validation[0]["accuracy"][1] > 0.35, f"instance accuracy at episode 5120: {validation[0]['accuracy']}"


# ---------------------------------------------------------------------------------------------------------
# The command line: one config, clear refusals


@pytest.mark.parametrize("argv, message", [
    (["--episodes", "0"], "episodes must be at least 1, not 0"),
    (["--episodes", "-5"], "episodes must be at least 1, not -5"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--log-every", "0"], "log_every must be at least 1"),
    (["--val-every", "0"], "val_every must be at least 1"),
    (["--val-episodes", "0"], "val_episodes must be at least 1"),
    (["--samples", "0"], "samples must be between 1 and 20"),
    (["--lr", "-1"], "lr must be a positive number"),
    (["--threads", "-1"], "--threads must be at least 1"),
    (["--stop-after", "0"], "--stop-after must be at least 1"),
    (["--memory-rows", "1"], "memory_rows must be even"),
    (["--classes", "1"], "classes must be at least 2"),
    (["--model", "flmn", "--read-heads", "4"], "--read-heads is not a setting of the flmn model"),
    (["--experiment", "III"], "experiment must be one of I, II"),
    (["--resume", "--lr", "0.1"], "a resumed run keeps its settings"),
    (["--widen-strokes", "7"], "widen_strokes needs experiment II"),
    (["--experiment", "II", "--widen-strokes", "-1"], "widen_strokes must be 0 or positive"),
    (["--seed", str(2**70)], f"seed must be between 0 and {2**32 - 1}"),
    (["--seed", "-1"], "seed must be between 0 and"),
    (["--config", "/dev/zero"], "/dev/zero: not a file"),
    (["--config", "/no/such/config.json"], "/no/such/config.json: no such file"),
])
def test_bad_options_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        flmn_core.training.options.parse(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "cannot read a training config"),  # nested past Python's recursion limit
    (" " * (flmn_core.training.config.MAX_CONFIG_BYTES + 1), "larger than 1,048,576 bytes"),
    ('{"model": {"name": "flmn", "config": {}}, "seed": ' + "9" * 5000 + "}", "cannot read a training config"),
    ('{"model": {"name": "flmn", "config": {}}, "seed": 1180591620717411303424}', "seed must be between 0"),
])
def test_a_config_file_that_is_no_config_is_refused_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_:
        flmn_core.training.options.parse(["--config", str(path)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_data_folder_that_does_not_exist_is_named_not_created(tmp_path):
    missing = tmp_path / "typo"
    with pytest.raises(SystemExit) as exit_:
        flmn_core.training.train.main(["--dry-run", "--out", str(tmp_path / "run"), "--data-dir", str(missing)])
    assert f"the data folder {missing} does not exist" in str(exit_.value.code) and not missing.exists()


def test_the_config_is_built_from_the_options():
    """Options land in the TrainConfig; a MANN option switches the model config to MANN's defaults."""
    _, config = flmn_core.training.options.parse(["--model", "mann", "--read-heads", "4", "--no-key-strength", "--lr", "5e-4"])
    assert config.model_name == "mann" and config.model.read_heads == 4 and config.model.controller_size == 200
    assert config.lr == 5e-4 and config.batch_size == 16 and config.episodes == 1_600_000
    _, config = flmn_core.training.options.parse(["--null-row", "--mask-empty-rows", "--retrieval-loss", "1"])
    assert config.model_name == "flmn" and config.model.null_row and config.retrieval_loss == 1.0
    assert flmn_core.training.config.TrainConfig.from_dict(config.to_dict()) == config


def run_files(out):
    """{name: content} of the files a run wrote into its folder (its lock file aside: flmn_core.training.runlock)."""
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name != flmn_core.training.runlock.LOCK_NAME}


def test_a_fresh_run_never_overwrites_a_run(data_dir, tmp_path):
    out = tmp_path / "run"
    succeeded(run_train(data_dir, *TINY, "--episodes", 8, "--out", out))
    before = run_files(out)
    result = run_train(data_dir, *TINY, "--episodes", 8, "--out", out)
    assert result.returncode != 0 and "already holds a run; continue it with --resume" in result.stderr
    assert run_files(out) == before
    (tmp_path / "file").write_text("x")
    result = run_train(data_dir, *TINY, "--out", tmp_path / "file")
    assert result.returncode != 0 and "is a file" in result.stderr


def test_config_of_a_checkpoint_retrains_it(data_dir, tmp_path):
    """`train --config last.pt` starts a run with exactly the checkpoint's TrainConfig."""
    first, again = tmp_path / "first", tmp_path / "again"
    succeeded(run_train(data_dir, *TINY, "--episodes", 8, "--seed", 5, "--null-row", "--out", first))
    succeeded(run_train(data_dir, "--config", first / "best.pt", "--threads", 1, "--out", again))
    assert json.loads((again / "config.json").read_text()) == json.loads((first / "config.json").read_text())
    for name, weight in flmn_core.load_checkpoint(first / "last.pt")["state_dict"].items():
        assert torch.equal(weight, flmn_core.load_checkpoint(again / "last.pt")["state_dict"][name])


def test_a_warm_start_continues_a_shipped_checkpoint(data_dir, tmp_path):
    """`train --warm-start NAME.pt`: a new run from the checkpoint's weights, config, episode count and the log
    shipped beside it (checkpoints/logs/NAME.jsonl); only the optimizer starts afresh."""
    first, shipped, warm = tmp_path / "first", tmp_path / "shipped", tmp_path / "warm"
    succeeded(run_train(data_dir, *TINY, "--episodes", 16, "--seed", 5, "--out", first))
    (shipped / "logs").mkdir(parents=True)
    shutil.copy(first / "best.pt", shipped / "tiny.pt")
    shutil.copy(first / "log.jsonl", shipped / "logs" / "tiny.jsonl")
    succeeded(run_train(data_dir, "--warm-start", shipped / "tiny.pt", "--episodes", 24, "--threads", 1, "--out", warm))

    config = json.loads((warm / "config.json").read_text())
    assert config == {**json.loads((first / "config.json").read_text()), "episodes": 24}
    records = read_log(warm)
    assert episodes_of(records, "train") == [8, 16, 24] and episodes_of(records, "validation") == [16, 24]
    assert episodes_of(records, "warm_start") == [16]  # the model card says where the optimizer started afresh
    last = flmn_core.load_checkpoint(warm / "last.pt")
    assert last["step"] == 24
    start = flmn_core.load_checkpoint(shipped / "tiny.pt")["state_dict"]
    # Two Adam steps of lr 1e-3 move a weight by about 2e-3 at most; a fresh start would be far away.
    assert max((last["state_dict"][name] - weight).abs().max().item() for name, weight in start.items()) < 0.01
    assert (warm / "best.pt").exists()
    # The checkpoint's validation is the score to beat when only --episodes changes; with any other setting
    # changed, selection begins afresh (the first validation writes best.pt, however it compares).
    payload = flmn_core.load_checkpoint(shipped / "tiny.pt")
    payload["metrics"]["validation"]["overall_accuracy"] = 0.99
    base = flmn_core.training.config.TrainConfig.from_dict(payload["train_config"])
    for config, best in ((dataclasses.replace(base, episodes=99), 0.99), (dataclasses.replace(base, lr=0.5), -1.0)):
        model = flmn_core.model.checkpoint.model_from_checkpoint(payload)
        out = tmp_path / f"unit-{config.lr}"
        out.mkdir()
        run = flmn_core.training.train.Run(config, out, model, flmn_core.training.train.make_optimizer(config, model), torch.Generator())
        run.warm_start(payload, shipped / "tiny.pt")
        assert run.best == best
    result = run_train(data_dir, "--warm-start", shipped / "tiny.pt", "--config", first / "best.pt", "--out", tmp_path / "x")
    assert result.returncode != 0 and "drop --config" in result.stderr


def test_only_the_runs_own_temporary_files_are_removed(tmp_path):
    own = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".log.jsonl.x.tmp"]
    others = [tmp_path / ".notes.txt.abc.tmp", tmp_path / ".last.pt.abc", tmp_path / "last.pt"]
    for path in own + others:
        path.write_text("x")
    flmn_core.files.remove_temporaries(tmp_path, flmn_core.training.train.RUN_FILES)
    assert not any(p.exists() for p in own) and all(p.exists() for p in others)


@pytest.mark.slow  # compiling even a tiny model's 50-step episode takes a minute or more
def test_the_compiled_step_computes_what_the_eager_step_does():
    """`train --compile` runs training_step's forward under torch.compile: the same loss and gradients as
    eager, for the retrieving variant's loss too (its extra terms are compiled with it)."""
    model_config = flmn_core.FLMNConfig(controller_size=16, memory_rows=8, word_size=8, read_first=True,
                                        key_strength=True, mask_empty_rows=True, null_row=True)
    config = flmn_core.training.config.TrainConfig(model=model_config, retrieval_loss=1.0)
    torch.manual_seed(0)
    model = flmn_core.FLMN(model_config)
    images = torch.rand(4, 50, 20, 20, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 5, (4, 50), generator=torch.Generator().manual_seed(2))
    batch = (images, flmn_core.data.episodes.offset_labels(labels, 5), labels,
             flmn_core.data.episodes.instance_numbers(labels, 5))
    results = []
    for compile_ in (False, True):
        model.zero_grad()
        logits, loss = flmn_core.training.train.training_step(model, config, compile_)(*batch)
        loss.backward()
        results.append((logits.detach(), loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (eager_logits, eager_loss, eager_grads), (logits, loss, grads) = results
    torch.testing.assert_close(logits, eager_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, eager_loss, rtol=1e-4, atol=1e-5)
    for grad, eager in zip(grads, eager_grads):
        torch.testing.assert_close(grad, eager, rtol=1e-3, atol=1e-5)


def test_a_class_range_draws_each_batch_its_own_class_count_from_the_label_space(omniglot):
    config = flmn_core.training.config.TrainConfig(model=flmn_core.FLMNConfig(classes=15), min_classes=2, batch_size=3)
    sample = flmn_core.training.train.episode_sampler(config, omniglot, None)
    generator = torch.Generator().manual_seed(0)
    counts = []
    for _ in range(40):
        batch = sample(generator=generator)
        classes = {len(set(episode.tolist())) for episode in batch.labels}
        assert len(classes) == 1 and batch.labels.shape[1] == 10 * min(classes)  # one length per batch
        assert batch.prev_labels.shape[-1] == 15
        counts.append(classes.pop())
    assert min(counts) >= 2 and max(counts) <= 15 and len(set(counts)) > 8


def test_class_ranges_and_recipes_are_checked(data_dir, tmp_path):
    with pytest.raises(ValueError, match="max_classes"):
        flmn_core.training.config.TrainConfig(max_classes=6)  # more than the model's 5 labels
    with pytest.raises(ValueError, match="min_classes"):
        flmn_core.training.config.TrainConfig(model=flmn_core.FLMNConfig(classes=15), min_classes=12, max_classes=10)
    args, config = flmn_core.training.options.parse(["--recipe", "authors-2017", "--batch-size", "10"])
    assert config.softmax_twice and config.batch_size == 10 and not config.model.clear_label_rows
    result = run_train(data_dir, "--recipe", "authors-2017", "--config", tmp_path / "x.json", "--out", tmp_path / "r")
    assert result.returncode == 2 and "one of --config and --recipe" in result.stderr


def test_the_loss_of_the_authors_code_applies_a_second_softmax():
    torch.manual_seed(0)
    model = flmn_core.build_model("flmn", controller_size=8, memory_rows=8, word_size=4)
    labels = torch.randint(0, 5, (2, 6))
    batch = (torch.rand(2, 6, 20, 20), flmn_core.data.episodes.offset_labels(labels, 5), labels, None)
    for twice in (False, True):
        config = flmn_core.training.config.TrainConfig(softmax_twice=twice)
        logits, loss = flmn_core.training.train.training_step(model, config, compile_=False)(*batch)
        scores = logits.softmax(-1) if twice else logits
        torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(scores.flatten(0, 1), labels.flatten()))
