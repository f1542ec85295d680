"""Ship a finished training run: its weights, its log, its evaluation results and its model card.

    flmn publish --run runs/flmn-exp1 --name flmn-exp1           # weights, log, evaluation, card
    flmn publish --run runs/flmn-exp1 --name flmn-exp1 --skip-eval
    flmn publish --run runs/flmn-pens --name flmn-pens --weights last.pt   # the run's end
    flmn publish --cards-only --readme README.md --results docs/results.md   # every card and table
    flmn publish --run runs/flmn-w80 --probe flmn-w80           # a probe's log, for its variant's card

Publishing RUN as NAME writes into zoo's checkpoint folder (flmn_core.model.zoo; --checkpoint-dir for another):
    NAME.pt                       RUN/best.pt (or --weights last.pt) without its training state, with the
                                  TrainConfig that trained it
    logs/NAME.jsonl               RUN/log.jsonl cut for shipping (flmn_core.training.runlog.trimmed)
    results/NAME-DATASET.json     flmn_core.training.evaluate's --json output: held-out Omniglot and zero-shot miniMNIST
    NAME.md                       the model card (flmn_core.results.cards), from the three files above
Publishing RUN as probe NAME (flmn_core.model.zoo's PROBES and FOLLOW_UPS) writes logs/probes/NAME.jsonl:
its training config, then its log cut for shipping from its start or its last warm start on; and, for a probe
zoo evaluates, the results of RUN/best.pt (results/probes/ on held-out characters, results/select/ on miniMNIST's
digits kept for choices). Its weights are not shipped.

This module is the command and the staging: it checks the run against zoo's entry and reads everything
that could refuse it before writing anything, and writes the weights only once a staged copy has loaded
back. What a card says is flmn_core.results.cards'; README's tables are flmn_core.results.report's.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch

from flmn_core.model import zoo
from flmn_core.model.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
    load_model,
)
from flmn_core.results import cards, report
from flmn_core.training import evaluate, runlog
from flmn_core.training.config import TrainConfig, read_config_file


class PublishError(Exception):
    """A run or a shipped file cannot be published; the message says which and why."""


def say(message):
    """Progress, on stderr (stdout carries flmn_core.training.evaluate's tables)."""
    print(message, file=sys.stderr, flush=True)


# ---- weights ------------------------------------------------------------------------------------------

def shippable_payload(run, name, weights="best.pt"):
    """RUN/best.pt (or RUN/last.pt) as NAME ships it -> checkpoint dict: checked against zoo's entry, without
    training state (no optimizer), with its TrainConfig (`train --config NAME.pt` retrains it) and the
    validation record that chose it."""
    source = Path(run) / weights
    try:
        payload = load_checkpoint(source)
    except CheckpointError as error:
        raise PublishError(f"{error} (a run folder holds best.pt after its first validation)") from None
    if weights == "last.pt":
        payload["metrics"] = {**payload["metrics"], "validation": validation_at(run, payload["step"]),
                              "selected": "last"}
    if "train_config" not in payload:
        raise PublishError(f"{source} holds no training config (train_config): it was written before "
                           "flmn_core.training.train saved one, so no command could train it again; retrain it")
    try:
        config = TrainConfig.from_dict(payload["train_config"])
    except ValueError as error:
        raise PublishError(f"{source}: its training config does not read ({error})") from None
    check_against_entry(zoo.entry(name), config, payload, run)
    # Every setting written out, those a run older than a setting left to its default included.
    return {key: value for key, value in payload.items() if key != "training"} | {
        "config": dataclasses.asdict(config.model), "train_config": config.to_dict()}


def validation_at(run, episode):
    """The validation record of RUN's log at an episode; PublishError when the run did not validate there."""
    path = Path(run) / "log.jsonl"
    records = runlog.read(path) if path.is_file() else []
    found = [r for r in records if r["kind"] == "validation" and r["episode"] == episode]
    if not found:
        raise PublishError(f"{Path(run) / 'last.pt'} is from episode {episode:,}, where {path} has no validation: "
                           "ship last.pt of a finished run (it validates at its end)")
    return found[-1]


def check_against_entry(entry, config, payload, run):
    """PublishError unless the run trained what zoo's entry says NAME is, and its config describes its weights."""
    if config.model_name != entry.model or payload["model"] != entry.model:
        raise PublishError(f"{entry.name} is a {entry.model.upper()} checkpoint, but {run} trained "
                           f"{config.model_name!r} ({run}/best.pt holds {payload['model']!r})")
    if config.experiment != entry.experiment:
        raise PublishError(f"{entry.name} is for Experiment {entry.experiment}, but {run} ran Experiment "
                           f"{config.experiment}")
    if config.model != type(config.model)(**payload["config"]):  # settings left out take their defaults
        raise PublishError(f"{run}/best.pt: its training config's model settings are not those of its weights")


def write_weights(payload, name, root=None):
    """Write payload to NAME.pt atomically, and only once the written file loads as it should: it is
    staged beside NAME.pt, checked, then renamed over it."""
    destination = zoo.weights_path(name, root)
    # Named .pt, because flmn_core.training.config reads a training config from a .pt file only.
    staged = destination.with_name(f".{destination.stem}.staged.pt")
    atomic_torch_save(payload, staged)
    try:
        check_staged_weights(staged, payload)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, destination)


def check_staged_weights(path, payload):
    """PublishError unless the file at path loads with load_model and holds payload's weights, gives back
    payload's TrainConfig to `train --config`, and is small."""
    try:
        model = load_model(path)
        config = read_config_file(path)
    except (CheckpointError, ValueError) as error:
        raise PublishError(f"the copy does not load: {error}") from None
    loaded = model.state_dict()
    if loaded.keys() != payload["state_dict"].keys() or not all(
            torch.equal(loaded[key], value) for key, value in payload["state_dict"].items()):
        raise PublishError(f"{path}: the copy's weights differ from best.pt's")
    if config.to_dict() != payload["train_config"]:
        raise PublishError(f"{path}: the copy's training config differs from best.pt's")
    size = path.stat().st_size
    if size > zoo.MAX_WEIGHTS_BYTES:
        raise PublishError(f"the weights take {size / 2**20:.1f} MB, more than the "
                           f"{zoo.MAX_WEIGHTS_BYTES / 2**20:.0f} MB a shipped checkpoint may")


# ---- log ----------------------------------------------------------------------------------------------

def shipped_log(run):
    """RUN/log.jsonl cut for shipping -> (records to ship, records read)."""
    source = Path(run) / "log.jsonl"
    if not source.is_file():
        raise PublishError(f"{source}: no such file (the run has not logged yet)")
    records = runlog.read(source)
    return runlog.trimmed(records), len(records)


def probe_log(run):
    """RUN's log as a probe's -> records: its TrainConfig first, then its log cut for shipping, from its last
    warm start on when it has one (the records before it are the shipped checkpoint's, in that one's log)."""
    try:
        config = read_config_file(Path(run) / "config.json")
    except ValueError as error:
        raise PublishError(str(error)) from None
    records, _ = shipped_log(run)
    starts = [i for i, record in enumerate(records) if record["kind"] == "warm_start"]
    return [{"kind": "config", "episode": 0, "config": config.to_dict()}] + records[starts[-1] if starts else 0:]


# ---- evaluation ---------------------------------------------------------------------------------------

def shown_path(path):
    """path relative to the working folder when it lies inside it (as results name their checkpoint)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def evaluate_shipped(name, root, episodes, seed, threads, data_dir=None):
    """Evaluate NAME.pt on every dataset and class count zoo gives it (zoo.evaluations) with
    flmn_core.training.evaluate's own command line, which writes its results file in its --json format."""
    shipped = zoo.entry(name)
    runs = ([(dataset, classes, None) for dataset, classes in zoo.evaluations(shipped)]
            + [("omniglot", classes, rows) for classes, rows in zoo.memory_probes(shipped)])
    for dataset, classes, rows in runs:
        result = zoo.result_path(name, dataset, root, classes, rows)
        result.parent.mkdir(parents=True, exist_ok=True)
        argv = ["--checkpoint", shown_path(zoo.weights_path(name, root)), "--dataset", dataset, "--classes",
                str(classes), "--episodes", str(episodes), "--seed", str(seed), "--json", str(result),
                "--threads", str(threads)]
        argv += ["--memory-rows", str(rows)] if rows else []
        argv += ["--data-dir", str(data_dir)] if data_dir else []
        with_rows = f", a memory of {rows} rows" if rows else ""
        say(f"evaluating {name} on {dataset}, {classes} classes{with_rows}: {episodes:,} episodes, seed {seed}")
        evaluate.main(argv)
        say(f"wrote {result}")


def existing_results(name, root):
    """PublishError unless NAME has a usable result file for every evaluation zoo gives it (for --skip-eval)."""
    for dataset, classes in zoo.evaluations(zoo.entry(name)):
        path = zoo.result_path(name, dataset, root, classes)
        try:
            result = report.load_result(name, dataset, root, classes)
        except report.ReportError as error:
            raise PublishError(str(error)) from None
        if result is None:
            raise PublishError(f"--skip-eval: {path} does not exist; publish without --skip-eval to evaluate")
        say(f"reusing {path} ({result['episodes']:,} episodes)")


# ---- command line -------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="flmn publish", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run", default=None, help="the run folder of flmn_core.training.train to publish")
    parser.add_argument("--name", choices=[c.name for c in zoo.CHECKPOINTS], default=None,
                        help="the shipped checkpoint it becomes (flmn_core.model.zoo)")
    parser.add_argument("--weights", choices=("best.pt", "last.pt"), default="best.pt",
                        help="the run's file to ship: best.pt (the best validation) or last.pt (the run's end, for a run "
                             "whose aim its Omniglot validation does not measure)")
    parser.add_argument("--probe", choices=[p.name for p in zoo.PROBES + zoo.FOLLOW_UPS], default=None,
                        help="ship the run's log (and zoo's evaluations of its best.pt) as this probe's "
                             "(flmn_core.model.zoo), for its variant's card")
    parser.add_argument("--cards-only", action="store_true",
                        help="regenerate every card from the files already shipped (no evaluation)")
    parser.add_argument("--readme", default=None, help="then rewrite this README's results in short (flmn_core.results.report)")
    parser.add_argument("--results", default=None, help="then rewrite the full results of this file (docs/results.md)")
    parser.add_argument("--episodes", type=evaluate.positive_int, default=10000, help="evaluation episodes per dataset")
    parser.add_argument("--seed", type=evaluate.seed_int, default=0, help="evaluation seed")
    parser.add_argument("--skip-eval", action="store_true",
                        help="reuse the existing result files (not checked to be of these weights)")
    parser.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: zoo's, checkpoints/)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    parser.add_argument("--threads", type=evaluate.positive_int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    if args.cards_only and (args.run or args.name or args.skip_eval):
        parser.error("--cards-only takes no --run, --name or --skip-eval")
    if args.probe and (args.name or args.cards_only or args.skip_eval or not args.run):
        parser.error("--probe takes --run RUN_FOLDER (and the evaluation's options) only")
    if not args.cards_only and not args.probe and not (args.run and args.name):
        parser.error("give --run RUN_FOLDER and --name NAME (or --probe NAME, or --cards-only)")
    return args


def publish(args, root):
    """Weights, log, evaluation (or the existing results) and card of one run, with progress."""
    say(f"publishing {args.run} as {args.name}")
    # Everything that can refuse the run is read first, so a refused publish leaves the folder as it was.
    if args.skip_eval:
        existing_results(args.name, root)
    payload = shippable_payload(args.run, args.name, args.weights)
    log, read = shipped_log(args.run)
    write_weights(payload, args.name, root)
    weights = zoo.weights_path(args.name, root)
    say(f"wrote {weights}: {weights.stat().st_size / 2**20:.1f} MB, episode {payload['step']:,}, loads")
    log_file = zoo.log_path(args.name, root)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    runlog.write(log_file, log)
    say(f"wrote {log_file}: {len(log)} of {read} records, {log_file.stat().st_size / 1000:.1f} KB")
    if not args.skip_eval:
        evaluate_shipped(args.name, root, args.episodes, args.seed, args.threads, args.data_dir)
    say(f"wrote {cards.write_card(args.name, root)}")


def publish_probe(args, root):
    """A run's log as probe args.probe's, in logs/probes/; and, for a probe tested on held-out characters
    (its zoo entry's `tested`), the evaluations of its best.pt, in results/probes/; for one that tries a choice
    made for MNIST (`selects`), its best.pt on the digits kept for choices, in results/select/."""
    records = probe_log(args.run)
    probe = zoo.probe(args.probe)
    best = Path(args.run) / "best.pt"
    if (probe.tested or probe.selects) and not best.is_file():
        raise PublishError(f"{best} does not exist: the probe {args.probe} is evaluated, not only logged")
    path = zoo.probe_log_path(args.probe, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    runlog.write(path, records)
    say(f"wrote {path}: {len(records)} records, {path.stat().st_size / 1000:.1f} KB")
    runs = [(zoo.probe_result_path(args.probe, root, rotate), ["--rotate", f"{rotate:g}"],
             f"test images turned by up to {rotate:g} degrees") for rotate in probe.tested]
    if probe.selects:
        runs.append((zoo.selection_path(args.probe, root), ["--dataset", "mnist", "--mnist-half", "select",
                                                            "--classes", str(zoo.PAPERS_CLASSES)],
                     "miniMNIST's digits kept for choices"))
    for result, options, what in runs:
        result.parent.mkdir(parents=True, exist_ok=True)
        argv = ["--checkpoint", shown_path(best), *options, "--episodes", str(args.episodes),
                "--seed", str(args.seed), "--json", str(result), "--threads", str(args.threads)]
        argv += ["--data-dir", str(args.data_dir)] if args.data_dir else []
        say(f"evaluating {best}, {what}: {args.episodes:,} episodes")
        evaluate.main(argv)
        say(f"wrote {result}")


def publish_cards(root):
    """Every card from the shipped files -> error messages of the cards that could not be made."""
    written, errors = cards.write_all_cards(root)
    for path in written:
        say(f"wrote {path}")
    if not written and not errors:
        say(f"no shipped weights in {zoo.checkpoint_dir(root)}: no card to write")
    return errors


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    root = args.checkpoint_dir
    if root is not None and not Path(root).is_dir():
        sys.exit(f"error: --checkpoint-dir {root} is not a folder")
    try:
        if args.cards_only:
            errors = publish_cards(root)
        elif args.probe:
            publish_probe(args, root)
            errors = []
        else:
            publish(args, root)
            errors = []
        if args.readme:
            report.rewrite_section(args.readme, report.summary_markdown(root))
            say(f"rewrote the results in short of {args.readme}")
        if args.results:
            report.rewrite_section(args.results, report.results_markdown(root))
            say(f"rewrote the results section of {args.results}")
    except (PublishError, cards.CardError, report.ReportError) as error:
        sys.exit(f"error: {error}")
    if errors:
        sys.exit("error: some cards were not written:\n" + "\n".join(errors))

