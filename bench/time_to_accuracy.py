"""Minutes until a training run first reaches a validation accuracy, read from its training log.

    python -m bench.time_to_accuracy                                 # the shipped logs in checkpoints/logs/
    python -m bench.time_to_accuracy runs/flmn-exp1/log.jsonl --instance 2 --target 0.856

The figure that matters most for training on a CPU: the FLMN paper reports 85.6% 2nd-instance accuracy
after 100,000 steps; how long does our engine need to reach it on the validation alphabets (never trained
on)? Wall time is the run's training time (compiling included; logged since runs record it), CPU time
the training processes' own (all processes, for data-parallel runs), as flmn_core.training.train logs them at
each validation. Compare runs made on the same machine with nothing else running.
"""

import argparse
from pathlib import Path

from bench.arguments import existing_file, fraction, whole_number
from flmn_core.model import zoo
from flmn_core.results import paper
from flmn_core.training.metrics import INSTANCES
from flmn_core.training.runlog import read as read_log


def first_reaching(records, instance, target):
    """The first validation record whose accuracy at `instance` is >= target, or None."""
    for record in records:
        if record.get("kind") == "validation" and record["accuracy"][instance - 1] >= target:
            return record
    return None


def best_validation(records, instance):
    """The validation record with the highest accuracy at `instance`, or None."""
    validations = [r for r in records if r.get("kind") == "validation"]
    return max(validations, key=lambda r: r["accuracy"][instance - 1], default=None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs", type=existing_file, nargs="*",
                   help="log files (default: every shipped log in checkpoints/logs/)")
    p.add_argument("--instance", type=whole_number(1, INSTANCES), default=2)
    p.add_argument("--target", type=fraction, default=paper.TABLE1[0].accuracy[2] / 100,
                   help="default: the FLMN paper's 2nd instance")
    args = p.parse_args(argv)
    paths = [Path(x) for x in args.logs] or [zoo.log_path(c.name) for c in zoo.CHECKPOINTS if zoo.log_path(c.name).is_file()]
    print(f"target: {100 * args.target:.1f}% accuracy at instance {args.instance} on the validation characters")
    for path in paths:
        records = read_log(path)
        hit = first_reaching(records, args.instance, args.target)
        if hit is not None:
            print(f"{path}: reached at episode {hit['episode']}, after {minutes(hit)}")
            continue
        best = best_validation(records, args.instance)
        if best is None:
            print(f"{path}: no validation records")
        else:
            print(f"{path}: not reached; best {100 * best['accuracy'][args.instance - 1]:.1f}% at episode "
                  f"{best['episode']} ({minutes(best)})")


def minutes(record):
    """'W wall minutes, C CPU minutes' of a log record (wall time only where the run logged it)."""
    cpu = f"{record['cpu_seconds'] / 60:.1f} CPU minutes"
    return f"{record['wall_seconds'] / 60:.1f} wall minutes, {cpu}" if "wall_seconds" in record else cpu


if __name__ == "__main__":
    main()
