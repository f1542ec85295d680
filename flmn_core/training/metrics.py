"""Per-instance accuracy: of all steps showing a class for the k-th time in its episode, the fraction
classified right (the papers' Tables 1 and 2), with 95% confidence intervals over episodes."""

import math

import torch

INSTANCES = 10  # instances reported: 1st to 10th presentation of a class


def instance_hits(logits, labels, instances, max_instance=INSTANCES):
    """Per-episode correct and total counts for each instance number.

    logits: [B, T, C]; labels, instances: [B, T] -> (correct [B, I], total [B, I]), I = max_instance;
    column k counts the steps of instance k + 1.
    """
    correct = (logits.argmax(-1) == labels).float()
    index = (instances.clamp(max=max_instance + 1) - 1)  # instances past max_instance go to a spare column
    shape = (labels.shape[0], max_instance + 1)
    hits = correct.new_zeros(shape).scatter_add_(1, index, correct)[:, :max_instance]
    total = correct.new_zeros(shape).scatter_add_(1, index, torch.ones_like(correct))[:, :max_instance]
    return hits, total


def mean_and_ci(values):
    """Per-episode values [E] -> (mean, 95% CI half-width), a normal approximation (nan for fewer than 2)."""
    n = values.numel()
    if n == 0:
        return float("nan"), float("nan")
    spread = float(values.std()) if n > 1 else float("nan")
    return float(values.mean()), 1.96 * spread / math.sqrt(n) if n > 1 else float("nan")


def summarize(hits, total):
    """Per-episode counts [E, I] -> per instance: accuracy, 95% CI half-width and episode count (lists).

    The accuracy pools all steps; the interval is a normal approximation over the per-episode accuracies
    of the episodes that contain that instance."""
    accuracy, half_width, counts = [], [], []
    for k in range(hits.shape[1]):
        has = total[:, k] > 0
        n = int(has.sum())
        accuracy.append(float(hits[:, k].sum() / total[:, k].sum()) if n else float("nan"))
        half_width.append(mean_and_ci(hits[has, k] / total[has, k])[1])
        counts.append(n)
    return {"accuracy": accuracy, "ci95": half_width, "episodes_with_instance": counts}
