"""Training throughput on episodes of 15 classes (150 steps) against episodes of 5 (50 steps), on one core.

    python -m bench.episode_length                                   # flmn-15's config
    python -m bench.episode_length --config checkpoints/mann-15.pt --rounds 3

A model of L labels trained on episodes of 2 to L classes (`--min-classes 2`) runs batches of different
lengths T = 10 C, so `train --compile` compiles one step of its recurrence rather than the whole unrolled
episode (flmn_core.training.train.training_step). Timed here, in rounds that alternate so that all meet the
same machine, whole training steps (forward, loss, backward, clipping, Adam; the sampling of the episodes
left out) of a fresh model of the config's:
- 15 classes, step compiled: how the 15-label run trains its longest episodes;
- 5 classes, step compiled: the same step function on the papers' 50-step episodes;
- 5 classes, episode compiled: a run of one class count, as `flmn-conv`'s trains (the whole episode compiled).
Prints episodes and time steps per second of process CPU time (one thread), and each figure's ratio to the
last. Pause other work (training runs) while it runs.
"""

import argparse
import dataclasses
import os
import platform
import statistics
import time

import torch

from bench.arguments import training_config_file
from bench.sample_ahead import stepper
from bench.train_speed import cpu_model
from flmn_core.data.sources import augmentation_images, load_omniglot
from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.training.config import TrainConfig
from flmn_core.training.evaluate import positive_int
from flmn_core.training.train import episode_sampler

# figure -> (classes per episode, whether the config's class range is kept, and with it the step compiled)
FIGURES = {"15 classes, step compiled": (15, True), "5 classes, step compiled": (5, True),
           "5 classes, episode compiled": (5, False)}


def with_classes(config, classes):
    """The config with every episode of `classes` classes (a run of one class count)."""
    return dataclasses.replace(config, min_classes=classes, max_classes=classes)


def timer(config, classes, keep_range, data, steps):
    """A fresh model's training step, compiled as a run of this config would compile it (keep_range) or as a
    run of `classes` classes only -> a function timing `steps` steps, in episodes per second of CPU time."""
    omniglot, raw = data
    one_step = stepper(config if keep_range else with_classes(config, classes), compiled=True)
    sample = episode_sampler(with_classes(config, classes), omniglot, raw if config.experiment == "II" else None)
    generator = torch.Generator().manual_seed(classes)
    batches = [sample(generator=generator) for _ in range(steps)]
    one_step(batches[0])  # compiles

    def rate():
        start = time.process_time()
        for batch in batches:
            one_step(batch)
        return config.batch_size * steps / (time.process_time() - start)

    return rate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=training_config_file, default="checkpoints/flmn-15.pt",
                   help="a checkpoint whose training config to time (its model needs 15 labels)")
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--steps", type=positive_int, default=6, help="training steps timed per figure and round")
    args = p.parse_args(argv)
    config = TrainConfig.from_dict(load_checkpoint(args.config)["train_config"])
    if config.model.classes < max(classes for classes, _ in FIGURES.values()):
        p.error(f"--config {args.config}: its model tells {config.model.classes} labels apart; give one of 15")
    torch.set_num_threads(1)
    print(f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}; "
          f"load {os.getloadavg()[0]:.1f}; {args.config}, batch {config.batch_size}")
    data = load_omniglot(raw=config.experiment == "II")
    data = (data[0], augmentation_images(data[1])) if config.experiment == "II" else (data, None)
    timers = {name: timer(config, classes, keep, data, args.steps) for name, (classes, keep) in FIGURES.items()}
    rates = {name: [] for name in FIGURES}
    for _ in range(args.rounds):
        for name, rate in timers.items():
            rates[name].append(rate())
    reference = list(FIGURES)[-1]
    for name, (classes, _) in FIGURES.items():
        median = statistics.median(rates[name])
        ratios = [a / b for a, b in zip(rates[name], rates[reference])]
        print(f"{name:28s}: {median:6.1f} episodes/s, {10 * classes * median:7.0f} steps/s of CPU time "
              f"(median of {args.rounds}); ratio to {reference}: {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
