"""The evaluation tool: per-instance accuracy counted right, the command line on the real data, bad files refused.

The counting functions are checked against plain loops written here; the command line in a real subprocess.
"""

import json
import math
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flmn_core
import flmn_core.training.config
from flmn_core.interactive.uploads import prepare
from flmn_core.training import evaluate
from flmn_core.training.metrics import INSTANCES, instance_hits, summarize

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"flmn": dict(controller_size=16, memory_rows=8, word_size=8, label_word_size=8),
         "mann": dict(controller_size=16, memory_rows=8, word_size=8)}


def reference_hits(logits, labels, instances, max_instance):
    """instance_hits as a loop over every step: (hits, total) nested lists [B][max_instance]."""
    hits = [[0] * max_instance for _ in labels]
    total = [[0] * max_instance for _ in labels]
    for b in range(len(labels)):
        for t in range(len(labels[b])):
            k = int(instances[b][t])
            if k <= max_instance:
                predicted = max(range(len(logits[b][t])), key=lambda c: logits[b][t][c])
                hits[b][k - 1] += int(predicted == labels[b][t])
                total[b][k - 1] += 1
    return hits, total


def reference_summary(hits, total):
    """summarize as a loop: pooled accuracy, 1.96 sample-std / sqrt(n) over the episodes with the instance."""
    accuracy, ci95, counts = [], [], []
    for k in range(len(hits[0])):
        rows = [b for b in range(len(hits)) if total[b][k] > 0]
        per_episode = [hits[b][k] / total[b][k] for b in rows]
        n = len(rows)
        accuracy.append(sum(hits[b][k] for b in rows) / sum(total[b][k] for b in rows) if n else math.nan)
        ci95.append(1.96 * statistics.stdev(per_episode) / math.sqrt(n) if n > 1 else math.nan)
        counts.append(n)
    return {"accuracy": accuracy, "ci95": ci95, "episodes_with_instance": counts}


def assert_same_numbers(got, expected):
    """Equal lists of floats, where NaN equals NaN."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e, rel=1e-6), (got, expected)


def test_instance_hits_of_a_hand_built_batch():
    # Episode 0 sees class 0 three times (the 3rd presentation is past max_instance=2 and must not count);
    # episode 1 sees class 2 three times. Predictions are the argmax of one-hot logits.
    labels = torch.tensor([[0, 1, 0, 0], [2, 2, 1, 2]])
    instances = torch.tensor([[1, 1, 2, 3], [1, 2, 1, 3]])
    predicted = torch.tensor([[0, 2, 0, 1], [1, 2, 1, 2]])
    logits = torch.nn.functional.one_hot(predicted, 3).float()
    hits, total = instance_hits(logits, labels, instances, max_instance=2)
    expected_hits, expected_total = reference_hits(logits.tolist(), labels.tolist(), instances.tolist(), 2)
    assert hits.tolist() == expected_hits and total.tolist() == expected_total
    assert total.sum() == 6  # the two 3rd presentations are left out


def test_instance_hits_of_random_episodes_match_a_loop(omniglot):
    generator = torch.Generator().manual_seed(5)
    batch = flmn_core.sample_episodes(omniglot.images, 6, generator, classes=5, samples=12)  # 12 > INSTANCES
    logits = torch.randn(6, 60, 5, generator=generator)
    hits, total = instance_hits(logits, batch.labels, batch.instances)
    expected = reference_hits(logits.tolist(), batch.labels.tolist(), batch.instances.tolist(), INSTANCES)
    assert (hits.tolist(), total.tolist()) == expected


def test_summarize_of_a_hand_built_batch():
    # Instance 1: three episodes (accuracies 1, 1/2, 0); instance 2: one episode; instance 3: none.
    hits = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    total = torch.tensor([[2.0, 2.0, 0.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    result = summarize(hits, total)
    expected = reference_summary(hits.tolist(), total.tolist())
    for key in ("accuracy", "ci95"):
        assert_same_numbers(result[key], expected[key])
    assert result["episodes_with_instance"] == expected["episodes_with_instance"] == [3, 1, 0]


def test_summarize_of_random_counts_matches_a_loop():
    generator = torch.Generator().manual_seed(1)
    total = torch.randint(0, 4, (40, INSTANCES), generator=generator).float()
    hits = torch.minimum(torch.randint(0, 4, (40, INSTANCES), generator=generator).float(), total)
    result = summarize(hits, total)
    expected = reference_summary(hits.tolist(), total.tolist())
    for key in ("accuracy", "ci95"):
        assert_same_numbers(result[key], expected[key])
    assert result["episodes_with_instance"] == expected["episodes_with_instance"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Small untrained FLMN and MANN checkpoints -> {"flmn": path, "mann": path}."""
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, config in SMALL.items():
        torch.manual_seed(0)
        paths[name] = folder / f"{name}.pt"
        flmn_core.save_checkpoint(paths[name], flmn_core.build_model(name, **config), step=0)
    return paths


def run_evaluate(data_dir, *args):
    """Run `flmn evaluate args` from the repository root -> CompletedProcess (text output)."""
    env = {**os.environ, "FLMN_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "flmn_core", "evaluate", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model, dataset", [("flmn", "omniglot"), ("mann", "mnist"), ("flmn", "mnist-normalised")])
def test_command_line_writes_per_instance_accuracy(data_dir, omniglot, checkpoints, tmp_path, model, dataset):
    report = tmp_path / "result.json"
    subsets = [] if dataset == "omniglot" else ["--subsets", 1]  # the mean over subsets: its own test below
    result = run_evaluate(data_dir, "--checkpoint", checkpoints[model], "--dataset", dataset, "--episodes", 50,
                          "--seed", 7, "--json", report, "--threads", 1, *subsets)
    assert result.returncode == 0, result.stderr
    written = json.loads(report.read_text())
    assert written["episodes"] == 50 and written["dataset"] == dataset and written["classes"] == 5
    assert len(written["accuracy"]) == len(written["ci95"]) == INSTANCES
    assert all(0 <= value <= 1 for value in written["accuracy"] + written["ci95"])
    assert written["episodes_with_instance"] == [50] * INSTANCES  # 10 samples per class: every instance, every episode
    assert f"{100 * written['accuracy'][0]:7.2f}%" in result.stdout  # the printed table shows the same numbers

    # The same episodes evaluated here, in this process, give the same numbers (subset 0's seed: 7 x 1000 + 0).
    seed = 7
    if dataset == "mnist":
        images, characters, seed = flmn_core.load_mini_mnist(data_dir), None, 7000
    elif dataset == "mnist-normalised":  # the same digits, read as the app reads a drawing
        digits = flmn_core.data.sources.mini_mnist_digits(data_dir, download=False)
        images, characters, seed = torch.stack([torch.stack([prepare(d) for d in row]) for row in digits]), None, 7000
    else:
        images, characters = omniglot.images, flmn_core.split_indices("test")
    expected = evaluate.evaluate_model(flmn_core.load_model(checkpoints[model]), images, 50, seed, characters=characters)
    assert written["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert written["loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_fewer_classes_than_labels_turned_test_images_and_the_random_split(data_dir, omniglot, tmp_path):
    """--classes 3 of a 15-label model; --rotate 10 turns the test images (the authors' test); a checkpoint
    trained on the random split is evaluated on that split's test characters unless told otherwise."""
    torch.manual_seed(0)
    path = tmp_path / "fifteen.pt"
    config = flmn_core.training.config.TrainConfig(model=flmn_core.FLMNConfig(classes=15, **SMALL["flmn"]), split="random")
    model = flmn_core.FLMN(config.model)
    flmn_core.save_checkpoint(path, model, step=0, train_config=config.to_dict())
    report = {}
    for name, extra in (("plain", []), ("turned", ["--rotate", 10]), ("alphabets", ["--split-scheme", "alphabets"])):
        report[name] = tmp_path / f"{name}.json"
        result = run_evaluate(data_dir, "--checkpoint", path, "--classes", 3, "--episodes", 20, "--seed", 3,
                              "--json", report[name], "--threads", 1, *extra)
        assert result.returncode == 0, result.stderr
        report[name] = json.loads(report[name].read_text())
    assert report["plain"]["classes"] == 3 and report["plain"]["labels"] == 15
    assert report["plain"]["split_scheme"] == "random" and report["alphabets"]["split_scheme"] == "alphabets"
    characters = flmn_core.split_indices("test", omniglot.characters, scheme="random")
    expected = evaluate.evaluate_model(model, omniglot.images, 20, 3, classes=3, characters=characters, labels=15)
    assert report["plain"]["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert report["turned"]["rotate"] == 10 and report["turned"]["loss"] != pytest.approx(expected["loss"], rel=1e-5)
    result = run_evaluate(data_dir, "--checkpoint", path, "--classes", 16, "--episodes", 2)
    assert result.returncode == 2 and "give 2 to 15" in result.stderr


def test_minimnist_figures_are_means_over_subsets_with_the_interval_of_that_mean(data_dir, tmp_path):
    report, shipped = tmp_path / "mnist.json", ROOT / "checkpoints" / "flmn-exp1.pt"  # a model that learned
    result = run_evaluate(data_dir, "--checkpoint", shipped, "--dataset", "mnist", "--episodes", 40,
                          "--subsets", 4, "--json", report, "--threads", 1)
    assert result.returncode == 0, result.stderr
    written = json.loads(report.read_text())
    pools = [flmn_core.load_mini_mnist(data_dir, subset=s, download=False) for s in range(4)]
    model = flmn_core.load_model(shipped)
    each = [evaluate.evaluate_model(model, pool, 10, s, labels=5)["accuracy"] for s, pool in enumerate(pools)]
    assert written["subsets"] == 4 and written["episodes"] == 40 and written["mnist_half"] == "report"
    for got, expected in zip(written["subset_accuracy"], each):
        assert got == pytest.approx(expected, abs=1e-6)
    assert len({tuple(accuracy) for accuracy in each}) == 4  # the subsets differ
    per_instance = torch.tensor(each).T
    assert written["accuracy"] == pytest.approx(per_instance.mean(1).tolist(), abs=1e-6)
    assert written["ci95"] == pytest.approx((1.96 * per_instance.std(1) / 2).tolist(), abs=1e-6)


def test_a_model_runs_with_another_memory_size_and_the_same_weights(checkpoints):
    model = flmn_core.load_model(checkpoints["flmn"])
    bigger = evaluate.with_memory_rows(model, 32)
    assert bigger.config.memory_rows == 32 and bigger.rows == 16
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), bigger.state_dict().values()))


def damaged_checkpoint(kind, good, folder):
    """A bad checkpoint file of a kind, made from a good one -> its path."""
    path = folder / f"{kind.replace(' ', '-')}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random bytes":
        path.write_bytes(random.Random(0).randbytes(5000))
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not a checkpoint":  # a valid torch file holding something else
        torch.save({"weights": torch.zeros(3)}, path)
    return path  # "missing": never written


@pytest.mark.parametrize("kind", ["missing", "empty", "random bytes", "truncated", "not a checkpoint"])
def test_a_bad_checkpoint_stops_with_a_message_naming_it(checkpoints, tmp_path, kind):
    path = damaged_checkpoint(kind, checkpoints["flmn"], tmp_path)
    with pytest.raises(SystemExit) as stopped:
        evaluate.main(["--checkpoint", str(path), "--episodes", "5"])
    message = stopped.value.code
    assert isinstance(message, str) and message.startswith("error:") and str(path) in message


@pytest.mark.parametrize("seed", [str(2**70), "-1"])
def test_a_seed_out_of_range_is_refused_with_a_message(checkpoints, capsys, seed):
    with pytest.raises(SystemExit) as stopped:
        evaluate.main(["--checkpoint", str(checkpoints["flmn"]), "--seed", seed])
    assert stopped.value.code == 2 and "argument --seed: must be between 0 and" in capsys.readouterr().err


def test_a_checkpoint_trained_on_an_unknown_split_is_refused_by_name(checkpoints, tmp_path):
    payload = torch.load(checkpoints["flmn"], weights_only=True)
    payload["train_config"] = {**(payload.get("train_config") or {}), "split": ["x"]}
    path = tmp_path / "odd-split.pt"
    torch.save(payload, path)
    with pytest.raises(SystemExit) as stopped:
        evaluate.main(["--checkpoint", str(path), "--episodes", "5"])
    assert f"{path}: its training config's split is ['x']" in str(stopped.value.code)


def test_no_random_file_escapes_as_a_traceback(tmp_path):
    """Random bytes drive torch's unpickler into many different failures; each must become the message."""
    path = tmp_path / "random.pt"
    escaped = {}
    for seed in range(100):
        path.write_bytes(random.Random(seed).randbytes(4096))
        try:
            evaluate.main(["--checkpoint", str(path), "--episodes", "5"])
        except SystemExit as stopped:
            if not (isinstance(stopped.code, str) and str(path) in stopped.code):
                escaped[seed] = repr(stopped.code)
        except Exception as error:  # noqa: BLE001 - the point is to catch whatever escapes
            escaped[seed] = repr(error)
    assert not escaped, f"seeds whose bytes were not reported as a bad checkpoint: {escaped}"


def test_a_corrupt_checkpoint_exits_non_zero_without_a_traceback(data_dir, checkpoints, tmp_path):
    path = damaged_checkpoint("truncated", checkpoints["flmn"], tmp_path)
    result = run_evaluate(data_dir, "--checkpoint", path, "--episodes", 5, "--json", tmp_path / "result.json")
    assert result.returncode != 0
    assert str(path) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "result.json").exists()
