"""One training run on both cores against the same run on one core, in episodes per second of wall time.

    python -m bench.two_cores                                      # flmn-retrieve's and flmn-conv's configs
    python -m bench.two_cores --configs checkpoints/flmn-conv.pt --rounds 20
    python -m bench.two_cores --configs checkpoints/flmn-conv.pt --figures "one run, one core" --baseline main

The ways a run can use the machine, each in processes of its own (a compiled step keeps the thread count it
was compiled with):
- one run, one core: one thread, the episodes sampled in the training process (`train --threads 1`);
- one run, sampled ahead: one thread, the episodes sampled in a second process (`--sample-ahead`);
- one run, two threads: two intra-op threads, sampled in place (`--threads 2`);
- one run, two processes: the batch split over two data-parallel processes of one thread, each on a core of
  its own, their gradients averaged at every step, each sampling episodes of its next batches while it waits
  for the other (`torchrun --standalone --nproc_per_node 2 -m flmn_core train ... --threads 1`): the same
  batches of 16 as one process, so the same learning per episode;
- two runs side by side: two one-core runs timed together over the same steps, their episodes per second
  summed: what the two cores give to work that needs no sharing, the most one run could hope for.
All the processes start together and compile their step (as `train --compile` does); then the ways take
turns, round after round, each timing `--steps` whole steps (sampling included) while the others wait idle.
This machine's speed drifts by a fifth from minute to minute, so short rounds that alternate many times are
what lets the ways meet the same machine; each round's ratio to one core is kept and their median printed.
Every way of one run takes optimizer steps on batches of the config's size (the one-process ways on the very
same episodes, tests/test_train.py; two processes on other draws of the same distribution,
tests/test_distributed.py), so the ratio is also how much sooner the run reaches a given validation accuracy.
`bench.whole_runs` times the same ways as whole runs of the train command. With `--baseline REF` each figure is
also timed with the code of git ref REF (exported with `git archive`, its processes taking their turns with
this tree's), and each figure's ratio to REF's is printed: whether a change made training slower. Pause other
work while the bench runs.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.app_latency import export
from bench.arguments import training_config_file
from bench.sample_ahead import CONFIGS, rate, stepper
from bench.train_speed import cpu_model
from flmn_core.data.sources import augmentation_images, load_omniglot
from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.training.config import TrainConfig
from flmn_core.training.distributed import init_distributed
from flmn_core.training.evaluate import positive_int
from flmn_core.training.train import training_batches

# A way to run: (intra-op threads, sampled ahead, data-parallel processes)
WAYS = {"in place": (1, False, 1), "sampled ahead": (1, True, 1), "two threads": (2, False, 1),
        "two processes": (1, False, 2)}
FIGURES = {"one run, one core": ("in place", 1), "one run, sampled ahead": ("sampled ahead", 1),
           "one run, two threads": ("two threads", 1), "one run, two processes": ("two processes", 1),
           "two runs side by side": ("in place", 2)}  # what is timed: (way, runs at once)
WARM_STEPS = 10  # untimed steps before each round's: after its seconds of waiting, a core runs slower at first


def serve_figures(path, way, steps):
    """In this process: compile the step of the training config at path, run `way`, say "ready"; then, for each
    line on stdin, time `steps` steps and print their episodes per second of wall time (in a data-parallel way,
    this process's share of them)."""
    threads, ahead, _ = WAYS[way]
    _, world, _ = init_distributed()  # joins the other processes of a data-parallel way, as train does
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(load_checkpoint(path)["train_config"])
    omniglot, raw = load_omniglot(raw=True)
    raw = augmentation_images(raw) if config.experiment == "II" else None
    one_step = stepper(config, compiled=True, world=world)
    batches = training_batches(config, omniglot, raw, torch.Generator().manual_seed(0), world, ahead)
    try:
        one_step(batches.next(), batches.sample_spare)  # compiles
        print("ready", flush=True)
        for _ in sys.stdin:  # "go"
            print(json.dumps({"episodes_per_second": rate(one_step, batches, steps, WARM_STEPS)}), flush=True)
    finally:
        batches.close()


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


class Figure:
    """The processes of one figure: `copies` runs of `way` on the training config at path, ready to be timed,
    running the code of the source tree `tree` (default: this one)."""

    def __init__(self, path, way, copies, steps, tree=None):
        self.name = f"{way} on {path}"
        command = [sys.executable, "-m", "bench.two_cores", "--one", str(Path(path).resolve()), way,
                   "--steps", str(steps)]
        envs = [env for _ in range(copies) for env in process_group(WAYS[way][2])]
        source = {"PYTHONPATH": str(tree)} if tree else {}
        self.logs = [tempfile.TemporaryFile("w+") for _ in envs]  # a pipe could fill and stall a child
        self.children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          text=True, cwd=tree, env={**os.environ, **env, **source})
                         for env, log in zip(envs, self.logs)]

    def answer(self, child, log):
        """The next line the child prints, or SystemExit with its errors if it stopped."""
        line = child.stdout.readline()
        if not line:
            log.seek(0)
            raise SystemExit(f"{self.name} failed:\n{log.read()[-2000:]}")
        return line.strip()

    def wait_ready(self):
        """Wait until every process has compiled its step."""
        for child, log in zip(self.children, self.logs):
            if self.answer(child, log) != "ready":
                raise SystemExit(f"{self.name} did not start")

    def time(self):
        """Episodes per second of wall time of all its processes together, timed at once."""
        for child in self.children:
            child.stdin.write("go\n")
            child.stdin.flush()
        return sum(json.loads(self.answer(child, log))["episodes_per_second"]
                   for child, log in zip(self.children, self.logs))

    def close(self):
        """End its processes (killed if they do not end: one of a process group that lost the other)."""
        for child in self.children:
            child.stdin.close()
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def measure(path, rounds, steps, names=tuple(FIGURES), baseline=None):
    """The figures `names` of the training config at path, and with baseline (git ref, source tree) each also
    with the baseline's code, timed in turns: {figure: [episodes per second per round]}."""
    figures = {name: Figure(path, *FIGURES[name], steps=steps) for name in names}
    if baseline:
        ref, tree = baseline
        figures.update({f"{name} @ {ref}": Figure(path, *FIGURES[name], steps=steps, tree=tree) for name in names})
    try:
        for figure in figures.values():
            figure.wait_ready()
        print(f"  every process has compiled its step; timing {rounds} rounds", flush=True)
        rates = {name: [] for name in figures}
        for round_ in range(rounds):
            for name in list(figures)[:: 1 if round_ % 2 == 0 else -1]:
                rates[name].append(figures[name].time())
        return rates
    finally:
        for figure in figures.values():
            figure.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", type=training_config_file, nargs="+", default=list(CONFIGS),
                   help="checkpoints whose training config to time")
    p.add_argument("--rounds", type=positive_int, default=12)
    p.add_argument("--steps", type=positive_int, default=30, help="training steps timed per figure and round")
    p.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="the figures to time")
    p.add_argument("--baseline", metavar="REF", help="also time each figure with the code of this git ref")
    p.add_argument("--one", nargs=2, metavar=("CONFIG", "WAY"), help=argparse.SUPPRESS)  # a child's figures
    args = p.parse_args(argv)
    if args.one:
        serve_figures(*args.one, args.steps)
        return
    print(f"{machine_line()}; {args.rounds} rounds of {args.steps} steps")
    with tempfile.TemporaryDirectory() as tree:
        if args.baseline:
            export(args.baseline, tree)
        for path in args.configs:
            print(path)
            baseline = (args.baseline, tree) if args.baseline else None
            figures = measure(path, args.rounds, args.steps, args.figures, baseline)
            pairs = [(name, f"{name} @ {args.baseline}") for name in args.figures] if args.baseline else None
            print_figures(figures, pairs)


def machine_line():
    """The first line of a two-core bench's output: the CPU, torch's version and the load average then."""
    return (f"machine: {cpu_model()}, torch {torch.__version__}; load average "
            f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def print_figures(figures, pairs=None):
    """{figure: [episodes per second, one per round]} -> printed: each figure's median over the rounds, then
    the ratios of the (figure, figure) pairs, round by round (default: each other figure to one run on one core)."""
    width = max(map(len, figures))
    for name, values in figures.items():
        print(f"  {name:{width}s}: {statistics.median(values):6.1f} episodes/s of wall time (median of "
              f"{len(values)}; {min(values):.1f}-{max(values):.1f})")
    for name, yardstick in pairs or [(name, "one run, one core") for name in list(figures)[1:]]:
        ratios = [other / one for one, other in zip(figures[yardstick], figures[name])]
        print(f"  ratio {name} / {yardstick}: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
