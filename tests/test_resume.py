"""`flmn train --resume` from a damaged or edited last.pt: every mutant of the training state is refused with
a message naming the file and the entry, before any data is read or anything written, and the file is kept
byte for byte. The valid file passes the same checks."""

import dataclasses
import math

import pytest
import torch

from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.model.networks import build_model
from flmn_core.training import train
from flmn_core.training.config import TrainConfig
from flmn_core.training.options import DRY_RUN_MODEL
from flmn_core.training.resume import check_training_state, resume_config

CONFIG = TrainConfig(episodes=16, batch_size=4)


def tiny_config():
    return dataclasses.replace(CONFIG, model=dataclasses.replace(CONFIG.model, **DRY_RUN_MODEL))


@pytest.fixture
def run_folder(tmp_path):
    """A run folder whose last.pt is what a run writes after one optimizer step -> folder."""
    config = tiny_config()
    model = build_model(config.model_name, **dataclasses.asdict(config.model))
    optimizer = train.make_optimizer(config, model)
    model(torch.rand(2, 10, 20, 20), torch.zeros(2, 10, 5)).sum().backward()
    optimizer.step()
    run = train.Run(config, tmp_path, model, optimizer, torch.Generator().manual_seed(0))
    run.episode, run.best, run.cpu_seconds, run.wall_seconds = 4, 0.25, 1.5, 2.0
    run.save("last.pt", {"cpu_seconds": 1.5}, with_training=True)
    return tmp_path


def mutate(training, path, value):
    """training with the entry at path (keys, outermost first) set to value, or deleted for DELETE."""
    *outer, last = path
    node = training
    for key in outer:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value(node[last]) if callable(value) else value


DELETE = object()
# name -> (path of the entry in the training state, new value (a function of the old one) or DELETE, what the
# message names)
MUTANTS = {
    "optimizer state missing": (("optimizer",), DELETE, "optimizer state is None"),
    "optimizer state a list": (("optimizer",), [1, 2], "optimizer state is [1, 2]"),
    "Adam moment, another shape": (("optimizer", "state", 0, "exp_avg"), torch.zeros(3, 3, 3), "exp_avg of parameter"),
    "Adam moment NaN": (("optimizer", "state", 1, "exp_avg_sq"), lambda t: t * math.nan, "exp_avg_sq of parameter"),
    "Adam moment float64": (("optimizer", "state", 0, "exp_avg"), lambda t: t.double(), "exp_avg of parameter 0"),
    "step count a string": (("optimizer", "state", 0, "step"), "1", "step of parameter 0"),
    "state of no parameter": (("optimizer", "state", 999), {}, "entry 999"),
    "betas a string": (("optimizer", "param_groups", 0, "betas"), "x", "optimizer's betas is 'x'"),
    "a second parameter group": (("optimizer", "param_groups"), lambda groups: groups * 2, "2 parameter groups"),
    "generator state missing": (("generator",), DELETE, "generator state"),
    "generator state cut short": (("generator",), lambda t: t[:100], "generator state"),
    "generator state of floats": (("generator",), lambda t: t.float(), "generator state"),
    "episode a string": (("episode",), "x", "its episode is 'x'"),
    "episode negative": (("episode",), -8, "its episode is -8"),
    "episode a bool": (("episode",), True, "its episode is True"),
    "best NaN": (("best",), math.nan, "its best is nan"),
    "cpu_seconds infinite": (("cpu_seconds",), math.inf, "its cpu_seconds is inf"),
    "wall_seconds a string": (("wall_seconds",), "2", "its wall_seconds is '2'"),
    "training config missing": (("config",), DELETE, "no training state"),
    "seed a string": (("config", "seed"), "x", "training config is not valid"),
    "a config of more labels": (("config", "model", "config", "classes"), 7, "another model"),
}


@pytest.mark.parametrize("where, value, named", MUTANTS.values(), ids=MUTANTS.keys())
def test_a_damaged_training_state_is_refused_by_name_and_kept(run_folder, where, value, named):
    last = run_folder / "last.pt"
    payload = torch.load(last, weights_only=True)
    mutate(payload["training"], where, value)
    torch.save(payload, last)
    before = last.read_bytes()
    with pytest.raises(SystemExit) as stop:
        train.main(["--resume", "--out", str(run_folder), "--data-dir", str(run_folder / "no data here")])
    message = str(stop.value.code)
    assert message.startswith("error: cannot resume") and str(last) in message and named in message, message
    assert last.read_bytes() == before
    assert sorted(p.name for p in run_folder.iterdir() if not p.name.startswith(".")) == ["last.pt"]


def test_the_valid_training_state_passes_the_same_checks(run_folder):
    payload = load_checkpoint(run_folder / "last.pt")
    config = resume_config(payload, run_folder / "last.pt")
    assert config == tiny_config()
    model = build_model(config.model_name, **dataclasses.asdict(config.model))
    check_training_state(payload["training"], train.make_optimizer(config, model))


@pytest.mark.parametrize("metrics", [{"cpu_seconds": "x", "validation": [1]}, {"cpu_seconds": math.nan},
                                     {"validation": {"overall_accuracy": "high"}}, {"cpu_seconds": True}])
def test_a_warm_start_takes_only_the_numbers_a_checkpoints_metrics_hold(run_folder, tmp_path, metrics):
    payload = load_checkpoint(run_folder / "last.pt")
    payload["metrics"] = metrics
    config = tiny_config()
    model = build_model(config.model_name, **dataclasses.asdict(config.model))
    run = train.Run(config, tmp_path / "warm", model, train.make_optimizer(config, model), torch.Generator())
    run.warm_start(payload, run_folder / "last.pt")
    assert (run.cpu_seconds, run.best, run.episode) == (0.0, -1.0, 4)
    assert load_checkpoint(tmp_path / "warm" / "best.pt")["step"] == 4
