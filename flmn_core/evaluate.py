"""Per-instance accuracy of a checkpoint on held-out episodes: the paper's Tables 1 and 2.

    python -m flmn_core.evaluate --checkpoint checkpoints/flmn-exp1.pt --episodes 10000 --seed 0
    python -m flmn_core.evaluate --checkpoint checkpoints/flmn-exp1.pt --dataset mnist   # zero-shot

Accuracy of the k-th instance: of all steps showing a class for the k-th time in its episode, the
fraction classified right. The 95% confidence interval treats episodes as independent samples.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_model
from .data import DataError, load_mini_mnist, load_omniglot, split_indices
from .episodes import sample_episodes
from .files import atomic_text

INSTANCES = 10  # instances reported: 1st to 10th presentation of a class
EVAL_BATCH = 500  # episodes per forward pass when evaluating


def instance_hits(logits, labels, instances, max_instance=INSTANCES):
    """Per-episode correct and total counts for each instance number.

    logits: [B, T, C]; labels, instances: [B, T] -> (correct [B, I], total [B, I]), I = max_instance;
    column k counts the steps of instance k + 1.
    """
    correct = (logits.argmax(-1) == labels).float()
    index = (instances.clamp(max=max_instance + 1) - 1)  # instances past max_instance go to a spare column
    shape = (labels.shape[0], max_instance + 1)
    hits = torch.zeros(shape).scatter_add_(1, index, correct)[:, :max_instance]
    total = torch.zeros(shape).scatter_add_(1, index, torch.ones_like(correct))[:, :max_instance]
    return hits, total


def summarize(hits, total):
    """Per-episode counts [E, I] -> per instance: accuracy, 95% CI half-width and episode count (lists).

    The accuracy pools all steps; the interval is a normal approximation over the per-episode accuracies
    of the episodes that contain that instance."""
    accuracy, half_width, counts = [], [], []
    for k in range(hits.shape[1]):
        has = total[:, k] > 0
        per_episode = hits[has, k] / total[has, k]
        n = int(has.sum())
        accuracy.append(float(hits[:, k].sum() / total[:, k].sum()) if n else float("nan"))
        spread = float(per_episode.std()) if n > 1 else float("nan")
        half_width.append(1.96 * spread / math.sqrt(n) if n > 1 else float("nan"))
        counts.append(n)
    return {"accuracy": accuracy, "ci95": half_width, "episodes_with_instance": counts}


@torch.no_grad()
def evaluate_model(model, images, episodes, seed, classes=5, samples=10, characters=None, batch=EVAL_BATCH):
    """Run `episodes` fresh episodes drawn with `seed` from images [classes, drawings, 20, 20] (restricted
    to `characters`) -> dict with per-instance accuracy, 95% CI, overall accuracy and mean loss."""
    generator = torch.Generator().manual_seed(seed)
    all_hits, all_total, loss_sum, steps = [], [], 0.0, 0
    for start in range(0, episodes, batch):
        size = min(batch, episodes - start)
        episode = sample_episodes(images, size, generator, classes, samples, characters=characters)
        logits = model(episode.images, episode.prev_labels)
        loss_sum += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), episode.labels.flatten(), reduction="sum"))
        steps += episode.labels.numel()
        hits, total = instance_hits(logits, episode.labels, episode.instances)
        all_hits.append(hits)
        all_total.append(total)
    hits, total = torch.cat(all_hits), torch.cat(all_total)
    result = summarize(hits, total)
    result["overall_accuracy"] = float(hits.sum() / total.sum())
    result["loss"] = loss_sum / steps
    result["episodes"] = episodes
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint file written by flmn_core.train")
    parser.add_argument("--dataset", choices=("omniglot", "mnist"), default="omniglot",
                        help="omniglot: the 414 held-out test characters; mnist: miniMNIST, zero-shot")
    parser.add_argument("--split", choices=("test", "validation", "train"), default="test", help="Omniglot characters to use")
    parser.add_argument("--episodes", type=int, default=10000)
    parser.add_argument("--classes", type=int, default=None, help="classes per episode (default: the model's)")
    parser.add_argument("--samples", type=int, default=10, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(args.checkpoint)
        if args.dataset == "mnist":
            images, characters = load_mini_mnist(args.data_dir), None
        else:
            images, characters = load_omniglot(args.data_dir).images, split_indices(args.split)
    except (CheckpointError, DataError) as error:
        sys.exit(f"error: {error}")
    classes = args.classes or model.config.classes
    start = time.process_time()
    result = evaluate_model(model, images, args.episodes, args.seed, classes, args.samples, characters)
    result.update(checkpoint=str(args.checkpoint), dataset=args.dataset, split=args.split if args.dataset == "omniglot" else "mini",
                  classes=classes, samples=args.samples, seed=args.seed, cpu_seconds=time.process_time() - start)
    print(format_result(result))
    if args.json:
        atomic_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


def format_result(result):
    """A plain-text table of per-instance accuracy with 95% CIs."""
    lines = [f"{result['checkpoint']} on {result['dataset']} ({result['split']}), {result['episodes']} episodes, "
             f"{result['classes']} classes x {result['samples']} samples, seed {result['seed']}",
             "instance  accuracy  95% CI"]
    for k, (acc, ci) in enumerate(zip(result["accuracy"], result["ci95"]), start=1):
        lines.append(f"{k:>8}  {100 * acc:7.2f}%  +/- {100 * ci:.2f}")
    lines.append(f"overall   {100 * result['overall_accuracy']:7.2f}%   loss {result['loss']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
