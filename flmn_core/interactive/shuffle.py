"""Label-shuffle replay: the same drawings again, with the labels of the episode permuted.

In the one-shot task a label means nothing across episodes: a model must bind each label to its class's
drawings in memory, within the episode. If it does, permuting the labels (every label c becomes
permutation[c], in the whole episode) changes nothing but the names: each prediction of the replay is the
permuted prediction of the original, and the per-instance accuracy holds. A model that had instead learned
to recognise the characters themselves would lose its later instances. The labels are an input too
(y_{t-1}), so predictions may differ a little; they must not differ much.

    replay = label_shuffle_replay(model, images, labels, derangement(5, seed=0))
    replay.agreement()                      # fraction of steps (2nd instance on) predicted as the permuted original
    replay.instance_accuracy()              # (correct, total) per instance: original and permuted

Shapes: B episodes, T steps, C classes; labels are 0..C-1.
"""

from dataclasses import dataclass

import torch

from flmn_core.data.episodes import instance_numbers, offset_labels
from flmn_core.training.metrics import INSTANCES, instance_hits


def derangement(classes, seed):
    """A random permutation of 0..C-1 that moves every label (so every step of the episode gets another
    label), the same for the same seed -> tuple of C ints: label c becomes permutation[c]."""
    if classes < 2:
        raise ValueError(f"a permutation that moves every label needs at least 2 classes, got {classes}")
    generator = torch.Generator().manual_seed(int(seed))
    while True:  # about 1 in e permutations is a derangement: a few draws suffice
        permutation = torch.randperm(classes, generator=generator)
        if bool((permutation != torch.arange(classes)).all()):
            return tuple(int(c) for c in permutation)


@dataclass(frozen=True)
class ShuffleReplay:
    """A model on an episode and on its label-shuffled replay.

    permutation: C ints, label c -> permutation[c].  labels, shuffled_labels: [B, T].
    probabilities, shuffled_probabilities: [B, T, L], the model's outputs on each (L >= C, its labels).
    """

    permutation: tuple
    labels: torch.Tensor
    shuffled_labels: torch.Tensor
    probabilities: torch.Tensor
    shuffled_probabilities: torch.Tensor

    def agreement(self, from_instance=2):
        """The fraction of steps, from the given instance of their class on, whose prediction in the replay
        is the permuted prediction of the original: near 1 when the model binds labels, near 0 when it
        ignores the permutation (which moves every label). From the 2nd instance by default: the 1st is a
        guess about a class not labelled yet, free to change with the labels fed before it."""
        predicted, C = self.probabilities.argmax(-1), len(self.permutation)
        # A label the episode does not use (a model of more labels than C) is not permuted.
        permuted = torch.where(predicted < C, torch.tensor(self.permutation)[predicted.clamp(max=C - 1)], predicted)
        counted = instance_numbers(self.labels, len(self.permutation)) >= from_instance
        same = self.shuffled_probabilities.argmax(-1) == permuted
        return float(same[counted].float().mean())

    def instance_accuracy(self, max_instance=INSTANCES):
        """Per-instance (correct [I], total [I]) counts over the episodes, as int lists, for the original
        and the replay -> ((correct, total), (correct, total)). The permutation keeps each step's instance."""
        classes = len(self.permutation)
        instances = instance_numbers(self.labels, classes)
        counts = []
        for probabilities, labels in ((self.probabilities, self.labels),
                                      (self.shuffled_probabilities, self.shuffled_labels)):
            hits, total = instance_hits(probabilities, labels, instances, max_instance)
            counts.append(([int(v) for v in hits.sum(0)], [int(v) for v in total.sum(0)]))
        return tuple(counts)


def permute_labels(labels, permutation):
    """labels [..., T] in 0..C-1 -> the same shape with every label c replaced by permutation[c]."""
    return torch.as_tensor(permutation, dtype=torch.long)[labels]


@torch.no_grad()
def label_shuffle_replay(model, images, labels, permutation):
    """Run a model on episodes and on the same episodes with permuted labels, from empty memories.

    images: [B, T, 20, 20], or one episode [T, 20, 20] (or a list of T [20, 20] tensors, as
    InteractiveEpisode.images); labels: [B, T] or [T] in 0..C-1; permutation: C ints (`derangement`), C at
    most the model's labels
    -> ShuffleReplay (with a batch dimension of 1 for one episode).
    """
    if isinstance(images, (list, tuple)):
        images = torch.stack([torch.as_tensor(image) for image in images])
    images, labels = torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)
    if labels.ndim == 1:
        images, labels = images[None], labels[None]
    classes, labels_ = len(permutation), model.config.classes
    if sorted(permutation) != list(range(classes)) or classes > labels_:
        raise ValueError(f"expected a permutation of 0..C-1 for C <= {labels_}, the model's labels; got {permutation!r}")
    if int(labels.max()) >= classes:
        raise ValueError(f"the episode uses label {int(labels.max())}, outside the permutation of 0..{classes - 1}")
    shuffled = permute_labels(labels, permutation)
    B = labels.shape[0]
    # Both in one batch: the original and the replay are independent episodes for the model, which reads
    # its own L labels (the episode uses C of them).
    logits = model(torch.cat([images, images]), offset_labels(torch.cat([labels, shuffled]), labels_))
    probabilities = torch.softmax(logits, dim=-1)
    return ShuffleReplay(tuple(int(c) for c in permutation), labels, shuffled, probabilities[:B], probabilities[B:])
