"""Per-instance accuracy and retrieval of a checkpoint on held-out episodes: the paper's Tables 1 and 2.

    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --episodes 10000 --seed 0
    flmn evaluate --checkpoint checkpoints/flmn-15.pt --classes 15            # 15 of its 15 labels
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --dataset mnist       # zero-shot, 20 subsets
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --dataset mnist-normalised
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --device cuda   # on a GPU: the same episodes

Accuracy of the k-th instance: of all steps showing a class for the k-th time in its episode, the
fraction classified right. Retrieval, over the steps whose class was seen before: how often the row read
most holds an earlier drawing of the class, the read weight on those rows, and how often no row holds the
class any more (`flmn_core.model.retrieval`). On Omniglot the 95% confidence intervals treat episodes as
independent samples; on miniMNIST the figures are means over subsets of 20 digits per class, and their
intervals those of the mean over subsets, which include how much the figure moves from subset to subset.
"""

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from flmn_core.data.episodes import sample_episodes
from flmn_core.data.sources import (
    MNIST_HALVES,
    SPLIT_SCHEMES,
    DataError,
    augmentation_images,
    load_mini_mnist,
    load_omniglot,
    split_indices,
)
from flmn_core.files import atomic_text
from flmn_core.model.checkpoint import CheckpointError, load_checkpoint, load_model
from flmn_core.model.retrieval import retrieval_stats
from flmn_core.training.config import MAX_SEED
from flmn_core.training.devices import DEVICES, model_device, pick_device
from flmn_core.training.metrics import INSTANCES, instance_hits, mean_and_ci, summarize

DATASETS = {
    "omniglot": "Omniglot's held-out characters (--split)",
    "mnist": "miniMNIST, zero-shot: each digit downscaled to 20 x 20, as the paper does",
    "mnist-normalised": "miniMNIST, zero-shot: each digit first brought to Omniglot's size, position and pen "
                        "width, as the app reads a drawing (flmn_core.data.normalise.normalise_drawing)",
}

EVAL_BATCH = 500  # episodes per forward pass when evaluating
MNIST_SUBSETS = 20  # miniMNIST figures are means over this many subsets (data.sources.MNIST_HALVES)
RETRIEVAL_MEASURES = ("top_hit", "mass", "focus", "lost")
# What is measured of each episode: name -> columns
MEASURED = {"hits": INSTANCES, "steps": INSTANCES, "loss": 1, "retrieval": len(RETRIEVAL_MEASURES)}


@torch.no_grad()
def evaluate_model(model, images, episodes, seed, classes=5, samples=10, characters=None, batch=EVAL_BATCH,
                   share=(0, 1), labels=None, raw_images=None, rotate=0.0):
    """Run `episodes` fresh episodes of `classes` classes drawn with `seed` from images [classes, drawings,
    20, 20] (restricted to `characters`) -> dict with per-instance accuracy, 95% CI, overall accuracy, mean
    loss and retrieval ({measure: mean, measure_ci95: half-width} over the steps of 2nd and later instances).

    labels: the model's label space L (default: classes); each episode uses `classes` of them.
    rotate: turn each image by U[-rotate, rotate] degrees first (no shift), as the FLMN authors' test
        episodes do; it needs raw_images, the full-size originals (`data.augmentation_images`).

    share (rank, world): in a data-parallel run (torch.distributed), each process runs the model on every
    world-th batch of `batch` episodes from its rank-th, and every process gets the result of them all.
    The episodes are sampled on the CPU and run on the model's device.
    """
    rank, world = share
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    measured = torch.zeros(episodes, sum(MEASURED.values()), dtype=torch.float64, device="cpu")
    for number, start in enumerate(range(0, episodes, batch)):
        episode = sample_episodes(images, min(batch, episodes - start), generator, classes, samples,
                                  characters=characters, labels=labels, raw_images=raw_images,
                                  augment=bool(rotate), max_rotation=rotate, max_shift=0.0)
        if number % world == rank:  # every process draws every batch, so that its generator keeps in step
            measured[start:start + episode.labels.shape[0]] = episode_measures(model, episode.to(device), labels or classes)
    if world > 1:
        dist.all_reduce(measured)  # each episode's row is filled by one process, zeros by the others
    hits, total, loss, retrieval = measured.split(list(MEASURED.values()), dim=1)
    result = summarize(hits, total)
    result["overall_accuracy"] = float(hits.sum() / total.sum())
    result["loss"] = float(loss.sum() / (episodes * classes * samples))
    result["retrieval"] = {}
    for name, values in zip(RETRIEVAL_MEASURES, retrieval.unbind(1)):
        mean, half_width = mean_and_ci(values)
        result["retrieval"].update({name: mean, f"{name}_ci95": half_width})
    result["episodes"] = episodes
    return result


def episode_measures(model, episode, labels):
    """The model run on a batch of episodes -> [B, sum of MEASURED] its measures of each episode, in
    MEASURED's order: hits and steps of each instance, the loss summed over the steps, and each retrieval
    measure's mean over the steps of a class seen before."""
    logits, recording = model(episode.images, episode.prev_labels, record=True)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), episode.labels.flatten(), reduction="none")
    hits, total = instance_hits(logits, episode.labels, episode.instances)
    stats = retrieval_stats(recording, episode.labels, episode.instances, labels)
    seen = stats["seen"].float()
    retrieval = [(stats[name] * seen).sum(1) / seen.sum(1).clamp(min=1) for name in RETRIEVAL_MEASURES]
    return torch.cat([hits, total, loss.view(episode.labels.shape).sum(1, keepdim=True),
                      torch.stack(retrieval, 1)], dim=1)


def dataset_images(dataset, split, data_dir=None, scheme="alphabets", raw=False):
    """A dataset of DATASETS -> (images [classes, drawings, 20, 20], the classes to draw from or None for all,
    and with raw=True (Omniglot only) the full-size originals that `evaluate_model(rotate=...)` turns)."""
    if dataset == "omniglot":
        omniglot, originals = load_omniglot(data_dir, raw=True) if raw else (load_omniglot(data_dir), None)
        characters = split_indices(split, omniglot.characters, scheme)
        if raw:
            return omniglot.images, characters, augmentation_images(originals)
        return omniglot.images, characters
    raise ValueError(f"{dataset} is read in subsets: mini_mnist_subsets")


def mini_mnist_subsets(dataset, count, half="report", data_dir=None):
    """The first `count` miniMNIST subsets of a half of MNIST's test digits, read as the dataset says ("mnist":
    downscaled, as the paper; "mnist-normalised": as the app reads a drawing) -> [images [10, 20, 20, 20]]."""
    return [load_mini_mnist(data_dir, subset=subset, half=half, normalised=dataset == "mnist-normalised")
            for subset in range(count)]


def evaluate_subsets(model, pools, episodes, seed, classes=5, samples=10, labels=None):
    """Evaluate on each pool (a miniMNIST subset) with an equal share of `episodes` -> evaluate_model's result
    as the mean over the subsets, its intervals those of that mean (1.96 standard deviations of the subsets'
    figures / sqrt(subsets)), so that they include how much the figure moves from one subset to the next;
    "subset_accuracy" holds each subset's per-instance accuracy. One subset gives its own result, whose
    intervals are over episodes only."""
    each = max(episodes // len(pools), 1)
    results = [evaluate_model(model, pool, each, seed * 1000 + number, classes, samples, labels=labels)
               for number, pool in enumerate(pools)]
    if len(results) == 1:
        return {**results[0], "subsets": 1, "subset_accuracy": [results[0]["accuracy"]]}
    per_subset = torch.tensor([result["accuracy"] for result in results], dtype=torch.float64)  # [S, I]
    intervals = [mean_and_ci(column) for column in per_subset.unbind(1)]
    retrieval = {}
    for measure in RETRIEVAL_MEASURES:
        mean, half_width = mean_and_ci(torch.tensor([result["retrieval"][measure] for result in results]))
        retrieval.update({measure: mean, f"{measure}_ci95": half_width})
    return {"accuracy": [mean for mean, _ in intervals], "ci95": [half_width for _, half_width in intervals],
            "episodes_with_instance": [sum(r["episodes_with_instance"][k] for r in results)
                                       for k in range(per_subset.shape[1])],
            "overall_accuracy": sum(r["overall_accuracy"] for r in results) / len(results),
            "loss": sum(r["loss"] for r in results) / len(results), "retrieval": retrieval,
            "episodes": each * len(pools), "subsets": len(pools), "subset_accuracy": per_subset.tolist()}


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def seed_int(text):
    """argparse type: a seed, a whole number from 0 to MAX_SEED (as TrainConfig's)."""
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, not {value}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="flmn evaluate", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint file written by flmn_core.training.train")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="omniglot",
                        help="; ".join(f"{name}: {text}" for name, text in DATASETS.items()))
    parser.add_argument("--split", choices=("test", "validation", "train"), default="test", help="Omniglot characters to use")
    parser.add_argument("--split-scheme", choices=SPLIT_SCHEMES, default=None,
                        help="how Omniglot was split (default: as the checkpoint was trained, else alphabets)")
    parser.add_argument("--rotate", type=float, default=0.0, metavar="DEGREES",
                        help="turn each Omniglot image by up to this many degrees (the FLMN authors' test: 10)")
    parser.add_argument("--episodes", type=positive_int, default=10000, help="episodes in all (miniMNIST: over its subsets)")
    parser.add_argument("--subsets", type=positive_int, default=MNIST_SUBSETS,
                        help="miniMNIST: how many subsets of 20 digits per class the figures are the mean over")
    parser.add_argument("--mnist-half", choices=MNIST_HALVES, default="report",
                        help="miniMNIST: the half of MNIST's test digits the subsets come from (choose on 'select')")
    parser.add_argument("--memory-rows", type=positive_int, default=None,
                        help="run the model with this many memory rows (its weights do not depend on them)")
    parser.add_argument("--classes", type=positive_int, default=None,
                        help="classes per episode, at most the model's labels (default: as many as its labels)")
    parser.add_argument("--samples", type=positive_int, default=10, help="samples per class (at most 20)")
    parser.add_argument("--seed", type=seed_int, default=0)
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--device", default="auto", help=f"where the model runs: {DEVICES}")
    args = parser.parse_args(argv)
    if args.json:
        check_writable(args.json, parser)
    if args.samples > 20:
        parser.error(f"--samples {args.samples}: a character has 20 drawings")
    if not 0 <= args.rotate <= 180:
        parser.error(f"--rotate {args.rotate}: give 0 to 180 degrees")
    if args.rotate and args.dataset != "omniglot":
        parser.error("--rotate turns Omniglot's full-size images; miniMNIST has none")
    return args, parser


def check_writable(path, parser):
    """Refuse a --json that cannot be written before evaluating (minutes of work): a folder, a file in a
    folder that does not exist, or one where no file can be made (read-only, full)."""
    path = Path(path)
    if path.is_dir():
        parser.error(f"--json {path} is a folder; give a file name")
    if not path.parent.resolve().is_dir():
        parser.error(f"--json {path}: the folder {path.parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        parser.error(f"--json {path}: no file can be written in {path.parent} ({error.strerror or error})")


def main(argv=None):
    args, parser = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    omniglot = args.dataset == "omniglot"
    try:
        device = pick_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    try:
        model = load_model(args.checkpoint, device=device)
        if args.memory_rows:
            model = with_memory_rows(model, args.memory_rows)
        scheme = args.split_scheme or trained_split_scheme(args.checkpoint)
        if omniglot:
            images, characters, *raw = dataset_images(args.dataset, args.split, args.data_dir, scheme, raw=bool(args.rotate))
        else:
            pools = mini_mnist_subsets(args.dataset, args.subsets, args.mnist_half, args.data_dir)
    except (CheckpointError, DataError, ValueError) as error:
        sys.exit(f"error: {error}")
    labels = model.config.classes
    classes = args.classes or default_classes(labels, args.dataset)
    if not 2 <= classes <= labels or (not omniglot and classes > 10):
        parser.error(f"--classes {classes}: {args.checkpoint} tells {labels} labels apart; give 2 to "
                     f"{labels if omniglot else min(labels, 10)}")
    start = time.process_time()
    if omniglot:
        result = evaluate_model(model, images, args.episodes, args.seed, classes, args.samples, characters,
                                labels=labels, raw_images=raw[0] if raw else None, rotate=args.rotate)
        result.update(split_scheme=scheme, rotate=args.rotate)
    else:
        result = evaluate_subsets(model, pools, args.episodes, args.seed, classes, args.samples, labels)
        result.update(mnist_half=args.mnist_half)
    result.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split if omniglot else "mini",
                  classes=classes, labels=labels, samples=args.samples, seed=args.seed,
                  memory_rows=model.config.memory_rows, cpu_seconds=time.process_time() - start)
    print(format_result(result))
    if args.json:
        try:
            atomic_text(args.json, json.dumps(result, indent=2) + "\n")
        except OSError as error:
            sys.exit(f"error: could not write {args.json} ({error.strerror or error}); the result is printed above. "
                     "Free some space on its disk or choose another --json.")
    return result


def default_classes(labels, dataset):
    """The class count of an evaluation without --classes: the papers' 5 on Omniglot, MNIST's 10 digits on
    miniMNIST, or the model's L labels when it has fewer."""
    return min(labels, 5 if dataset == "omniglot" else 10)


def with_memory_rows(model, rows):
    """The same model with a memory of `rows` rows: its weights are kept (none depends on the memory's size)."""
    config = dataclasses.replace(model.config, memory_rows=rows)
    resized = type(model)(config)
    resized.load_state_dict(model.state_dict())
    return resized.to(model_device(model)).eval()


def trained_split_scheme(path):
    """How the Omniglot characters were split for the run that made a checkpoint ("alphabets" when it says
    nothing: every checkpoint made before the setting existed was trained on the paper's split)."""
    config = load_checkpoint(path).get("train_config")
    scheme = config.get("split", "alphabets") if isinstance(config, dict) else "alphabets"
    if scheme not in SPLIT_SCHEMES:
        raise CheckpointError(path, f"its training config's split is {scheme!r}, not one of {', '.join(SPLIT_SCHEMES)}")
    return scheme


def format_result(result):
    """A plain-text table of per-instance accuracy with 95% CIs, then retrieval."""
    turned = f", turned up to {result['rotate']:g} degrees" if result.get("rotate") else ""
    scheme = f", {result['split_scheme']} split" if result.get("split_scheme", "alphabets") != "alphabets" else ""
    lines = [f"{result['checkpoint']} on {result['dataset']} ({result['split']}{scheme}{turned}), {result['episodes']} "
             f"episodes, {result['classes']} classes x {result['samples']} samples, seed {result['seed']}",
             "instance  accuracy  95% CI"]
    for k, (acc, ci) in enumerate(zip(result["accuracy"], result["ci95"]), start=1):
        lines.append(f"{k:>8}  {100 * acc:7.2f}%  +/- {100 * ci:.2f}")
    lines.append(f"overall   {100 * result['overall_accuracy']:7.2f}%   loss {result['loss']:.4f}")
    r = result["retrieval"]
    lines.append(f"retrieval (2nd+ instances): most-read row holds the class {100 * r['top_hit']:.1f}% "
                 f"+/- {100 * r['top_hit_ci95']:.1f}; read mass on the class's rows {r['mass']:.3f} +/- "
                 f"{r['mass_ci95']:.3f}; focus {r['focus']:.3f}")
    return "\n".join(lines)

