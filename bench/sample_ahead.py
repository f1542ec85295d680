"""Whole training steps (sampling the episodes included) with the sampling in the training process or in a
second process ahead of it (`train --sample-ahead`), in episodes per second of wall time.

    python -m bench.sample_ahead                                   # flmn-retrieve's and flmn-conv's configs
    python -m bench.sample_ahead --configs checkpoints/flmn-exp1.pt --rounds 3 --no-compile

For each shipped checkpoint's training config: a fresh model, its training step compiled once (as
`train --compile` runs it), then rounds of `--steps` steps taken alternately both ways on the training
characters, so that both meet the same machine. The episodes are the same both ways (tests/test_train.py
checks it), so a run's accuracy per episode is too, and the ratio is also how much sooner it reaches a given
validation accuracy. The machine is printed first; pause other work (training runs) while it runs.
"""

import argparse
import dataclasses
import os
import statistics
import time

import torch

from bench.arguments import training_config_file
from bench.train_speed import cpu_model
from flmn_core.data.batches import Batches
from flmn_core.data.sources import augmentation_images, load_omniglot
from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.model.networks import build_model
from flmn_core.training.config import TrainConfig
from flmn_core.training.evaluate import positive_int
from flmn_core.training.train import apply_gradients, episode_sampler, make_optimizer, training_step

CONFIGS = ("checkpoints/flmn-retrieve.pt", "checkpoints/flmn-conv.pt")


def stepper(config, compiled, world=1):
    """A fresh model's training step on a batch, as `flmn_core.training.train` takes it (in each of `world`
    data-parallel processes) -> a function of the batch and of what to do while waiting for the others."""
    torch.manual_seed(0)
    model = build_model(config.model_name, **dataclasses.asdict(config.model))
    optimizer = make_optimizer(config, model)
    forward = training_step(model, config, compiled)

    def one_step(batch, while_waiting=None):
        _, loss = forward(batch.images, batch.prev_labels, batch.labels, batch.instances)
        apply_gradients(model, optimizer, loss, config.clip, world, while_waiting)

    return one_step


def rate(one_step, batches, steps, warm=1):
    """Episodes per second of wall time over `steps` steps on `batches`, after `warm` more steps: the first
    lets a sampling process fill its queue, and a core that has been idle for seconds runs slower for a
    second or two."""
    for _ in range(warm):
        batch = batches.next()
        one_step(batch, batches.sample_spare)
    start = time.perf_counter()
    for _ in range(steps):
        one_step(batches.next(), batches.sample_spare)
    return batch.images.shape[0] * steps / (time.perf_counter() - start)


def measure(path, data, args):
    """Time the training config of the checkpoint at path both ways, alternately; print the figures."""
    config = TrainConfig.from_dict(load_checkpoint(path)["train_config"])
    one_step = stepper(config, args.compile)
    omniglot, raw = data
    sample = episode_sampler(config, omniglot, raw if config.experiment == "II" else None)
    start = time.perf_counter()
    one_step(sample(generator=torch.Generator().manual_seed(1)))
    print(f"{path}: experiment {config.experiment}, encoder {config.model.encoder}; first step "
          f"{time.perf_counter() - start:.0f} s{' (compiling)' if args.compile else ''}")
    rounds = {False: [], True: []}
    for _ in range(args.rounds):
        for ahead in rounds:
            batches = Batches(sample, torch.Generator().manual_seed(0), ahead)
            try:
                rounds[ahead].append(rate(one_step, batches, args.steps))
            finally:
                batches.close()
    ratios = [a / b for a, b in zip(rounds[True], rounds[False])]
    print(f"  sampling in place : {statistics.median(rounds[False]):6.1f} episodes/s of wall time "
          f"(median of {args.rounds})")
    print(f"  sampling ahead    : {statistics.median(rounds[True]):6.1f} episodes/s of wall time")
    print(f"  ratio ahead / in place: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", type=training_config_file, nargs="+", default=list(CONFIGS),
                   help="checkpoints whose training config to time")
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--steps", type=positive_int, default=40, help="training steps per round")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads of the training process (the sampling process uses one)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, torch {torch.__version__}, {args.threads} thread(s) in the training process; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    omniglot, raw = load_omniglot(raw=True)
    data = (omniglot, augmentation_images(raw))
    del raw
    for path in args.configs:
        measure(path, data, args)


if __name__ == "__main__":
    main()
