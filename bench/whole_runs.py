"""Whole training runs, started as a person starts them, in episodes per second of wall time: one run on one
core, on two threads and on two processes, and two one-core runs side by side, taking turns round after round.

    python -m bench.whole_runs                                             # flmn-conv's config
    python -m bench.whole_runs --config checkpoints/flmn-retrieve.pt --episodes 6000 --rounds 5

`bench.two_cores` times the ways in rounds of 30 steps; this bench times what a run keeps up for minutes on
end. Each figure is the real command, `flmn train --config CKPT --compile` (under `torchrun`
for two processes), training the shipped checkpoint's config from scratch for `--episodes` episodes into a
temporary folder. Its rate comes from the run's own log: the episodes between its first and last training
records over the wall seconds between them, so that compiling (in the first record) and the final
validation (after the last) are left out. PyTorch caches each way's compiled step after its first run, which
takes minutes on a fresh machine. Pause other work while it runs.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.arguments import training_config_file
from bench.two_cores import machine_line, print_figures
from flmn_core.training.evaluate import positive_int
from flmn_core.training.runlog import read as read_log

TRAIN = ["-m", "flmn_core", "train", "--compile"]
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# A figure: (the command's launcher, its options, runs at once)
FIGURES = {"one run, one core": ([], ["--threads", "1"], 1),
           "one run, two threads": ([], ["--threads", "2"], 1),
           "one run, two processes": (TORCHRUN, ["--threads", "1"], 1),
           "two runs side by side": ([], ["--threads", "1"], 2)}


def log_rate(out):
    """Episodes per second of wall time between the first and last training records of the run in `out`."""
    train = read_log(Path(out) / "log.jsonl", "train")
    if len(train) < 2:
        raise SystemExit(f"{out}: fewer than two training records; give more --episodes")
    first, last = train[0], train[-1]
    return (last["episode"] - first["episode"]) / (last["wall_seconds"] - first["wall_seconds"])


def run_figure(name, config, episodes):
    """Run the figure's runs of `config` at once, each to `episodes` -> their episodes per second, summed."""
    launcher, options, copies = FIGURES[name]
    with tempfile.TemporaryDirectory() as folder:
        outs = [Path(folder) / f"run{copy}" for copy in range(copies)]
        runs = [subprocess.Popen([sys.executable, *launcher, *TRAIN, "--config", config, "--episodes", str(episodes),
                                  "--out", str(out), *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True) for out in outs]
        for run in runs:
            _, errors = run.communicate()
            if run.returncode != 0:
                raise SystemExit(f"{name} failed:\n{errors[-2000:]}")
        return sum(log_rate(out) for out in outs)


def measure(config, rounds, episodes):
    """{figure: [episodes per second, one per round]}, the figures taking turns, in reverse order every other
    round so that none always follows the same one."""
    rates = {name: [] for name in FIGURES}
    for round_ in range(rounds):
        for name in list(FIGURES)[:: 1 if round_ % 2 == 0 else -1]:
            rates[name].append(run_figure(name, config, episodes))
            print(f"  round {round_ + 1}, {name}: {rates[name][-1]:.1f} episodes/s", file=sys.stderr, flush=True)
    return rates


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=training_config_file, default="checkpoints/flmn-conv.pt",
                   help="checkpoint whose training config to run")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--episodes", type=positive_int, default=12000, help="episodes of each run")
    args = p.parse_args(argv)
    print(f"{machine_line()}; {args.rounds} rounds of runs of {args.episodes} episodes of {args.config}'s config",
          flush=True)
    print_figures(measure(args.config, args.rounds, args.episodes))


if __name__ == "__main__":
    main()
