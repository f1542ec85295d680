"""One training run on both cores against the same run on one core, in episodes per second of wall time.

    python -m bench.two_cores                                      # flmn-retrieve's and flmn-conv's configs
    python -m bench.two_cores --configs checkpoints/flmn-conv.pt --rounds 5

Each figure comes from fresh processes, so that each has its own threads (a compiled step keeps the thread
count it was compiled with):
- one run, one core: one thread, the episodes sampled in the training process (`train --threads 1`);
- one run, sampled ahead: one thread, the episodes sampled in a second process (`--sample-ahead`);
- one run, two threads: two intra-op threads, sampled in place (`--threads 2`);
- one run, two processes: the batch split over two data-parallel processes of one thread, each on a core of
  its own, their gradients averaged at every step (`torchrun --standalone --nproc_per_node 2 -m
  flmn_core.train ... --threads 1`): the same batches of 16 as one process, so the same learning per episode;
- two runs side by side: two one-core runs started together and timed over the same steps, their episodes
  per second summed: what the two cores give to work that needs no sharing, the most one run could hope for.
Whole training steps are timed (sampling included, compiled, after a warm-up step), as bench/sample_ahead.py
does. The ways take turns, round by round, so that they meet the same machine; each round's ratio is kept
and their median printed. Every way of one run takes optimizer steps on batches of the config's size (the
one-process ways on the very same episodes, tests/test_train.py; two processes on other draws of the same
distribution, tests/test_distributed.py), so the ratio is also how much sooner the run reaches a given
validation accuracy. Pause other work while the bench runs.
"""

import argparse
import json
import os
import socket
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
from flmn_core.train import episode_sampler, init_distributed

# A way to run: (intra-op threads, sampled ahead, data-parallel processes)
WAYS = {"in place": (1, False, 1), "sampled ahead": (1, True, 1), "two threads": (2, False, 1),
        "two processes": (1, False, 2)}
FIGURES = {"one run, one core": ("in place", 1), "one run, sampled ahead": ("sampled ahead", 1),
           "one run, two threads": ("two threads", 1), "one run, two processes": ("two processes", 1),
           "two runs side by side": ("in place", 2)}  # what is timed: (way, runs at once)


def one_figure(path, way, steps):
    """In this process: episodes per second of wall time of the training config at path, run `way` (in a
    data-parallel way, this process's share of them)."""
    threads, ahead, _ = WAYS[way]
    _, world = init_distributed()  # joins the other processes of a data-parallel way, as train does
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(load_checkpoint(path)["train_config"])
    omniglot, raw = load_omniglot(raw=True)
    sample = episode_sampler(config, omniglot, augmentation_images(raw) if config.experiment == "II" else None,
                             world)
    one_step = stepper(config, compiled=True, world=world)
    one_step(sample(generator=torch.Generator().manual_seed(1)))  # compiles
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every process timed together has compiled
    return rate(one_step, sample, ahead, steps)


def free_port():
    """A TCP port free on this machine now, for a process group to meet on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_group(processes):
    """The environment of each process of a data-parallel run of `processes` (none for one): what torchrun
    gives the processes it starts."""
    if processes == 1:
        return [{}]
    port = str(free_port())
    return [{"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(rank), "WORLD_SIZE": str(processes)}
            for rank in range(processes)]


def measured(path, way, copies, steps):
    """Episodes per second of fresh processes run `way`, summed over `copies` runs timed together: each
    process compiles, says "ready", and starts timing when told "go"."""
    command = [sys.executable, "-m", "bench.two_cores", "--one", path, way, "--steps", str(steps)]
    envs = [env for _ in range(copies) for env in process_group(WAYS[way][2])]
    logs = [tempfile.TemporaryFile("w+") for _ in envs]  # a pipe could fill and stall a child
    children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                 text=True, env={**os.environ, **env}) for env, log in zip(envs, logs)]

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
