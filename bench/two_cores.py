"""One training run on both cores against the same run on one core, in episodes per second of wall time.

    python -m bench.two_cores                                      # flmn-retrieve's and flmn-conv's configs
    python -m bench.two_cores --configs checkpoints/flmn-conv.pt --rounds 5

Each figure comes from fresh processes, so that each has its own threads (a compiled step keeps the thread
count it was compiled with):
- one run, one core: one thread, the episodes sampled in the training process (`train --threads 1`);
- one run, sampled ahead: one thread, the episodes sampled in a second process (`--sample-ahead`);
- one run, two threads: two intra-op threads, sampled in place (`--threads 2`);
- two runs side by side: two one-core runs started together and timed over the same steps, their episodes
  per second summed: what the two cores give to work that needs no sharing, the most one run could hope for.
Whole training steps are timed (sampling included, compiled, after a warm-up step), as bench/sample_ahead.py
does. The ways take turns, round by round, so that they meet the same machine; each round's ratio is kept
and their median printed. The episodes are the same either way (tests/test_train.py), so the ratio is also
how much sooner the run reaches a given validation accuracy (two runs side by side excepted: they are two
runs). Pause other work while the bench runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import torch

from bench.sample_ahead import CONFIGS, rate, stepper
from bench.train_speed import cpu_model
from flmn_core.checkpoint import load_checkpoint
from flmn_core.config import TrainConfig
from flmn_core.data import augmentation_images, load_omniglot
from flmn_core.train import episode_sampler

WAYS = {"in place": (1, False), "sampled ahead": (1, True), "two threads": (2, False)}  # threads, ahead
FIGURES = {"one run, one core": ("in place", 1), "one run, sampled ahead": ("sampled ahead", 1),
           "one run, two threads": ("two threads", 1),
           "two runs side by side": ("in place", 2)}  # what is timed: (way, processes at once)


def one_figure(path, way, steps):
    """In this process: episodes per second of wall time of the training config at path, run `way`."""
    threads, ahead = WAYS[way]
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(load_checkpoint(path)["train_config"])
    omniglot, raw = load_omniglot(raw=True)
    sample = episode_sampler(config, omniglot, augmentation_images(raw) if config.experiment == "II" else None)
    one_step = stepper(config, compiled=True)
    one_step(sample(generator=torch.Generator().manual_seed(1)))  # compiles
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every process timed together has compiled
    return rate(one_step, sample, ahead, steps)


def measured(path, way, copies, steps):
    """Episodes per second of fresh processes run `way`, summed over `copies` of them timed together: each
    compiles, says "ready", and starts timing when told "go"."""
    command = [sys.executable, "-m", "bench.two_cores", "--one", path, way, "--steps", str(steps)]
    logs = [tempfile.TemporaryFile("w+") for _ in range(copies)]  # a pipe could fill and stall a child
    children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                 text=True) for log in logs]

    def failed(log):
        log.seek(0)
        return SystemExit(f"{way} on {path} failed:\n{log.read()[-2000:]}")

    for child, log in zip(children, logs):
        if child.stdout.readline().strip() != "ready":
            raise failed(log)
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    total = 0.0
    for child, log in zip(children, logs):
        out, _ = child.communicate()
        if child.returncode:
            raise failed(log)
        total += json.loads(out.strip().splitlines()[-1])["episodes_per_second"]
    return total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), help="checkpoints whose training config to time")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=60, help="training steps timed per figure")
    p.add_argument("--one", nargs=2, metavar=("CONFIG", "WAY"), help=argparse.SUPPRESS)  # a child's figure
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps({"episodes_per_second": one_figure(*args.one, args.steps)}))
        return
    print(f"machine: {cpu_model()}, torch {torch.__version__}; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for path in args.configs:
        figures = {way: [] for way in FIGURES}
        for round_ in range(args.rounds):
            for name in list(FIGURES)[:: 1 if round_ % 2 == 0 else -1]:
                figures[name].append(measured(path, *FIGURES[name], steps=args.steps))
        print(path)
        for name, values in figures.items():
            print(f"  {name:26s}: {statistics.median(values):6.1f} episodes/s of wall time (median of "
                  f"{args.rounds}: {', '.join(f'{v:.1f}' for v in values)})")
        for name in list(FIGURES)[1:]:
            ratios = [other / one for one, other in zip(figures["one run, one core"], figures[name])]
            print(f"  ratio {name} / one run, one core: median {statistics.median(ratios):.2f} "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
