"""Devices: `--device` and what it picks, every tensor of a step made where the model and its inputs are,
bfloat16 autocast, checkpoints that load on a machine without the GPU that wrote them, and the GPU check.

This machine has no GPU. What a GPU would catch, a tensor made on the wrong device, is caught here by running
with a default device ('meta') other than the one the model and its inputs are on (the CPU): a tensor made
without naming its device lands on 'meta', where it holds no values, and the step fails or computes
something else.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from test_models import VARIANTS, make_model
from test_train import read_log, run_train, succeeded

import flmn_core
from flmn_core.training import devices
from flmn_core.training.config import TrainConfig
from flmn_core.training.distributed import average_gradients
from flmn_core.training.evaluate import evaluate_model
from flmn_core.training.train import apply_gradients, make_optimizer, training_step

ROOT = Path(__file__).resolve().parents[1]
LABELS = 3  # the label count of test_models' small configs


def random_pools(characters=10, drawings=6, seed=0):
    """(images [characters, drawings, 20, 20], their full-size copies [characters, drawings, 42, 42]): random
    pools to sample episodes from, as `data.augmentation_images` gives the full-size ones."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(characters, drawings, 20, 20, generator=generator),
            torch.rand(characters, drawings, 42, 42, generator=generator))


def step_inputs(batch):
    """Episodes -> the arguments of training_step's function."""
    return batch.images, batch.prev_labels, batch.labels, batch.instances


def step_results(variant, default_device):
    """What a training step, an evaluation and the app's step compute for a model of test_models' VARIANTS,
    with the model and the data on the CPU and `default_device` the default for new tensors -> dict."""
    model = make_model(variant)
    config = TrainConfig(model=model.config, retrieval_loss=0.5)
    images, full_size = random_pools()
    with torch.device(default_device):
        batch = flmn_core.sample_episodes(images, 3, torch.Generator().manual_seed(1), classes=2, samples=4,
                                          raw_images=full_size, augment=True, rotate_classes=True,
                                          widen_strokes=3.0, labels=LABELS)
        logits, loss = training_step(model, config, compile_=False)(*step_inputs(batch))
        apply_gradients(model, make_optimizer(config, model), loss, config.clip, world=1)
        evaluation = evaluate_model(model.eval(), images, 5, seed=2, classes=2, samples=4, batch=2, labels=LABELS,
                                    raw_images=full_size, rotate=10.0)
        app_logits, _, _ = model.step(batch.images[:1, 0], batch.prev_labels[:1, 0])
    return {"episodes": batch, "logits": logits.detach(), "loss": loss.detach(), "evaluation": evaluation,
            "weights": model.state_dict(), "app_logits": app_logits.detach()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_step_makes_every_tensor_where_the_model_and_its_inputs_are(variant):
    expected, got = step_results(variant, "cpu"), step_results(variant, "meta")
    pairs = [*zip(expected["episodes"]._fields, expected["episodes"], got["episodes"]),
             *((name, expected[name], got[name]) for name in ("logits", "loss", "app_logits"))]
    for name, want, tensor in pairs:
        assert tensor.device.type == "cpu", f"{name}: on {tensor.device}"
        assert torch.equal(tensor, want), f"{name} differs under another default device"
    for key, weight in expected["weights"].items():
        assert torch.equal(got["weights"][key], weight), f"{key} after the step differs under another default device"
    assert json.dumps(got["evaluation"]) == json.dumps(expected["evaluation"])


def test_the_all_reduce_of_the_gradients_carries_the_stop_where_the_gradients_are(tmp_path):
    model = make_model("flmn")
    images, _ = random_pools()
    batch = flmn_core.sample_episodes(images, 2, torch.Generator().manual_seed(1), classes=3, samples=4)
    training_step(model, TrainConfig(model=model.config), compile_=False)(*step_inputs(batch))[1].backward()
    grads = [parameter.grad.clone() for parameter in model.parameters()]
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)  # a group of one process
    try:
        with torch.device("meta"):
            stop = average_gradients(list(model.parameters()), world=1, stop=True)
    finally:
        torch.distributed.destroy_process_group()
    assert stop is True
    assert all(torch.equal(parameter.grad, grad) for parameter, grad in zip(model.parameters(), grads))


# Two runs of `flmn train --dry-run`: the retrieving convolutional FLMN on turned classes, its batches of 3 to 5
# classes of 5 labels, and a MANN of two heads under bfloat16 autocast. (Experiment II's augmentation, which
# needs Omniglot's full-size images, is in step_results.)
WHOLE_RUNS = {
    "flmn-conv, 3 to 5 classes": ["--encoder", "conv", "--read-first", "--key-strength", "--mask-empty-rows",
                                  "--null-row", "--retrieval-loss", "0.5", "--rotate-classes", "--min-classes", "3"],
    "mann, bf16": ["--model", "mann", "--read-heads", "2", "--write-content", "add", "--bf16"],
}


def whole_runs(data_dir, folder, options):
    """`flmn train --dry-run` with options into folder/DEFAULT, then `flmn evaluate` of its last.pt, in two
    processes at once, one whose default device is the CPU and one whose default is 'meta' -> {DEFAULT: what
    the run and the evaluation printed, its folder as RUN}."""
    processes = {}
    for default in ("cpu", "meta"):
        out = folder / default
        train = ["--dry-run", "--threads", "1", "--out", str(out), *options]
        evaluate = ["--checkpoint", str(out / "last.pt"), "--episodes", "20", "--threads", "1"]
        code = (f"import torch; torch.set_default_device({default!r}); "
                f"from flmn_core.training import evaluate, train; train.main({train!r}); evaluate.main({evaluate!r})")
        processes[default] = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True,
                                              env={**os.environ, "FLMN_DATA_DIR": str(data_dir)})
    printed = {}
    for default, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        succeeded(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
        printed[default] = stdout.replace(str(folder / default), "RUN")
    return printed


@pytest.mark.parametrize("run", WHOLE_RUNS)
def test_a_run_whose_default_device_is_elsewhere_trains_and_evaluates_the_same(data_dir, tmp_path, run):
    printed = whole_runs(data_dir, tmp_path, WHOLE_RUNS[run])
    expected, got = (flmn_core.load_checkpoint(tmp_path / default / "last.pt") for default in ("cpu", "meta"))
    assert got["step"] == expected["step"] == 16
    for key, weight in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][key], weight), f"{key} differs under another default device"
    validations = [[record["accuracy"] for record in read_log(tmp_path / default) if record["kind"] == "validation"]
                   for default in ("cpu", "meta")]
    assert validations[0] == validations[1] and len(validations[0]) == 2
    assert printed["meta"] == printed["cpu"]  # the training log's lines and the evaluation's table
    assert "instance  accuracy" in printed["cpu"]


def test_bf16_runs_the_forward_under_autocast_and_keeps_the_memories_float32():
    model = make_model("flmn-conv")
    config = TrainConfig(model=model.config, retrieval_loss=0.5)
    images, _ = random_pools()
    batch = flmn_core.sample_episodes(images, 3, torch.Generator().manual_seed(1), classes=3, samples=4)
    memories = []
    advance = model.advance

    def recorded_advance(gates_in, state):
        state, trace = advance(gates_in, state)
        memories.append((state.feature_memory.dtype, state.label_memory.dtype))
        return state, trace

    model.advance = recorded_advance
    logits, loss = training_step(model, config, compile_=False)(*step_inputs(batch))
    bf16_logits, bf16_loss = training_step(model, config, compile_=False, bf16=True)(*step_inputs(batch))
    assert logits.dtype == torch.float32 and bf16_logits.dtype == torch.bfloat16
    assert set(memories) == {(torch.float32, torch.float32)} and len(memories) == 2 * 12
    assert bf16_loss.item() != loss.item()
    torch.testing.assert_close(bf16_loss.float(), loss, rtol=0.02, atol=0)


# ---------------------------------------------------------------------------------------------------------
# --device


def test_auto_takes_a_cuda_gpu_then_mps_then_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.pick_device("auto") == torch.device("cuda", 0)
    assert devices.pick_device("cuda", local_rank=1) == torch.device("cuda", 1)  # a data-parallel run's second GPU
    assert devices.pick_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.pick_device("auto") == torch.device("cpu")
    assert devices.pick_device("cpu", local_rank=1) == torch.device("cpu")


@pytest.mark.parametrize("name, local_rank, message", [
    ("gpu", None, f"--device gpu: not a device; give {devices.DEVICES}"),
    ("meta", None, "--device meta: not a device for training"),
    ("cuda:2", None, "--device cuda:2: GPU 2 does not exist; this machine has 2"),
    ("cuda:1", 0, "--device cuda:1: each process of a data-parallel run takes the GPU of its LOCAL_RANK"),
    ("mps", 0, "--device mps: a data-parallel run needs CUDA GPUs or CPUs"),
])
def test_a_device_that_cannot_be_used_is_refused_with_a_message(monkeypatch, name, local_rank, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        devices.pick_device(name, local_rank)


def test_a_device_this_machine_lacks_stops_train_and_evaluate_before_they_write(data_dir, tmp_path):
    absent = f"cuda:{torch.cuda.device_count() + 7}"  # no such GPU, whether the machine has GPUs or none
    result = run_train(data_dir, "--dry-run", "--device", absent, "--out", tmp_path / "run")
    assert result.returncode != 0 and f"error: --device {absent}: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists(), "a refused run wrote files"
    result = subprocess.run([sys.executable, "-m", "flmn_core", "evaluate", "--checkpoint", "checkpoints/flmn-conv.pt",
                             "--device", absent, "--json", str(tmp_path / "result.json")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"--device {absent}: " in result.stderr, result.stderr
    assert not (tmp_path / "result.json").exists()


# ---------------------------------------------------------------------------------------------------------
# Checkpoints from a GPU


def saved_as_on_gpu(monkeypatch, payload, path):
    """torch.save payload to path as a run on a CUDA GPU would have saved it: every storage marked as on
    cuda:0 (torch.serialization's location tags), though this machine has none."""
    registry = list(torch.serialization._package_registry)
    monkeypatch.setattr(torch.serialization, "_package_registry", registry)
    torch.serialization.register_package(0, lambda storage: "cuda:0", lambda storage, location: None)
    torch.save(payload, path)
    monkeypatch.undo()
    with zipfile.ZipFile(path) as archive:
        pickled = next(archive.read(name) for name in archive.namelist() if name.endswith("/data.pkl"))
    # the location strings of the pickle's storages (protocol 2 writes a string as X, its length, its bytes)
    assert b"X\x06\x00\x00\x00cuda:0" in pickled and b"X\x03\x00\x00\x00cpu" not in pickled


def test_a_checkpoint_saved_on_a_gpu_loads_and_resumes_on_the_cpu(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    succeeded(run_train(data_dir, "--dry-run", "--threads", "1", "--out", out))
    for name in ("last.pt", "best.pt"):
        saved_as_on_gpu(monkeypatch, torch.load(out / name, weights_only=True), out / name)
    model = flmn_core.load_model(out / "best.pt")
    assert {weight.device.type for weight in model.state_dict().values()} == {"cpu"}
    succeeded(run_train(data_dir, "--resume", "--episodes", "24", "--threads", "1", "--out", out))
    last = flmn_core.load_checkpoint(out / "last.pt")
    assert last["step"] == 24 and int(last["training"]["optimizer"]["state"][0]["step"]) == 6


# ---------------------------------------------------------------------------------------------------------
# The GPU check


def test_the_gpu_check_says_plainly_when_there_is_no_accelerator_and_measures_the_cpu_when_asked():
    command = [sys.executable, "-m", "bench.gpu_check", "--batches", "2", "4", "--rounds", "2", "--steps", "2",
               "--no-compile", "--threads", "1"]
    found = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        assert "episodes/s" in found.stdout and "no accelerator" not in found.stdout
    else:
        assert found.stdout.startswith("no accelerator: ") and "nothing was measured" in found.stdout
    cpu = subprocess.run(command + ["--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cpu.returncode == 0, cpu.stderr
    lines = cpu.stdout.splitlines()
    assert lines[0].startswith("device: cpu")
    for batch in (2, 4):
        assert any(line.startswith(f"batch {batch:4d} eager") and "episodes/s" in line for line in lines), cpu.stdout
    assert any(line.startswith("sampling") and "episodes/s on one CPU core" in line for line in lines), cpu.stdout
    assert "a checkpoint saved from cpu holds CPU tensors only: yes" in lines
