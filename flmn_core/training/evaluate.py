"""Per-instance accuracy and retrieval of a checkpoint on held-out episodes: the paper's Tables 1 and 2.

    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --episodes 10000 --seed 0
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --dataset mnist   # zero-shot
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --dataset mnist-normalised
    flmn evaluate --checkpoint checkpoints/flmn-exp1.pt --device cuda   # on a GPU: the same episodes

Accuracy of the k-th instance: of all steps showing a class for the k-th time in its episode, the
fraction classified right. Retrieval, over the steps whose class was seen before: how often the row read
most holds an earlier drawing of the class, and the read weight on those rows (`flmn_core.model.retrieval`).
The 95% confidence intervals treat episodes as independent samples.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from flmn_core.data.episodes import sample_episodes
from flmn_core.data.normalise import normalise_drawing
from flmn_core.data.sources import (
    SPLIT_SCHEMES,
    DataError,
    augmentation_images,
    load_mini_mnist,
    load_omniglot,
    mini_mnist_digits,
    split_indices,
)
from flmn_core.files import atomic_text
from flmn_core.model.checkpoint import CheckpointError, load_checkpoint, load_model
from flmn_core.model.retrieval import retrieval_stats
from flmn_core.training.devices import DEVICES, model_device, pick_device
from flmn_core.training.metrics import INSTANCES, instance_hits, mean_and_ci, summarize

DATASETS = {
    "omniglot": "Omniglot's held-out characters (--split)",
    "mnist": "miniMNIST, zero-shot: each digit downscaled to 20 x 20, as the paper does",
    "mnist-normalised": "miniMNIST, zero-shot: each digit first brought to Omniglot's size, position and pen "
                        "width, as the app reads a drawing (flmn_core.data.normalise.normalise_drawing)",
}

EVAL_BATCH = 500  # episodes per forward pass when evaluating
RETRIEVAL_MEASURES = ("top_hit", "mass", "focus")
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
    if dataset == "mnist":
        return load_mini_mnist(data_dir), None
    return torch.stack([torch.stack([normalise_drawing(image) for image in row]) for row in mini_mnist_digits(data_dir)]), None


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
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
    parser.add_argument("--episodes", type=positive_int, default=10000)
    parser.add_argument("--classes", type=positive_int, default=None,
                        help="classes per episode, at most the model's labels (default: as many as its labels)")
    parser.add_argument("--samples", type=positive_int, default=10, help="samples per class (at most 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--device", default="auto", help=f"where the model runs: {DEVICES}")
    args = parser.parse_args(argv)
    if args.json and Path(args.json).is_dir():
        parser.error(f"--json {args.json} is a folder; give a file name")
    if args.json and not Path(args.json).parent.resolve().is_dir():
        parser.error(f"--json {args.json}: the folder {Path(args.json).parent} does not exist")
    if args.samples > 20:
        parser.error(f"--samples {args.samples}: a character has 20 drawings")
    if not 0 <= args.rotate <= 180:
        parser.error(f"--rotate {args.rotate}: give 0 to 180 degrees")
    if args.rotate and args.dataset != "omniglot":
        parser.error("--rotate turns Omniglot's full-size images; miniMNIST has none")
    return args, parser


def main(argv=None):
    args, parser = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    try:
        model = load_model(args.checkpoint, device)
        scheme = args.split_scheme or trained_split_scheme(args.checkpoint)
        images, characters, *raw = dataset_images(args.dataset, args.split, args.data_dir, scheme, raw=bool(args.rotate))
    except (CheckpointError, DataError) as error:
        sys.exit(f"error: {error}")
    labels = model.config.classes
    classes = args.classes or labels
    if not 2 <= classes <= labels:
        parser.error(f"--classes {classes}: {args.checkpoint} tells {labels} labels apart; give 2 to {labels}")
    start = time.process_time()
    result = evaluate_model(model, images, args.episodes, args.seed, classes, args.samples, characters, labels=labels,
                            raw_images=raw[0] if raw else None, rotate=args.rotate)
    result.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split if args.dataset == "omniglot" else "mini",
                  classes=classes, labels=labels, samples=args.samples, seed=args.seed, cpu_seconds=time.process_time() - start)
    if args.dataset == "omniglot":
        result.update(split_scheme=scheme, rotate=args.rotate)
    print(format_result(result))
    if args.json:
        atomic_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


def trained_split_scheme(path):
    """How the Omniglot characters were split for the run that made a checkpoint ("alphabets" when it says
    nothing: every checkpoint made before the setting existed was trained on the paper's split)."""
    return (load_checkpoint(path).get("train_config") or {}).get("split", "alphabets")


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

