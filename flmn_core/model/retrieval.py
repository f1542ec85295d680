"""Does a model's read land on the rows where earlier drawings of the same class were stored?

The papers' idea (FLMN's Fig. 1b): when a class comes back, the key finds the memory row written with an
earlier drawing of it, and the label stored with that row is read out. These functions measure that from
a `Recording` (the read and write weights of every step) and the episode's labels, which the model never
sees, and give the same measure as a training loss.

Shapes: B batch, T steps, R heads, N rows, C classes, K tags.
"""

import math

import torch
import torch.nn.functional as F

# A row "holds" a class when most of what was written into it (by write weight) came from that class.
MAJORITY = 0.5


def row_contents(recording, tags):
    """What each memory row holds just before each step's read, from the steps before it.

    tags: [B, T, K], a one-hot tag of each step: its class (K = C) or the step itself (K = T).
    -> contents [B, T, N, K]: at step t, the write weight that row i received from the earlier steps s < t
    tagged k, with every row Eq. (7) cleared at or before t emptied (a cleared row no longer holds them).
    """
    writes = recording.write_weights.detach().sum(2)  # [B, T, N], all heads
    kept = 1.0 - recording.cleared.detach()  # [B, T, N]
    B, T, N = writes.shape
    held = torch.zeros(B, N, tags.shape[-1], dtype=writes.dtype, device=writes.device)
    contents = []
    for t in range(T):
        held = held * kept[:, t, :, None]
        contents.append(held)
        held = held + writes[:, t, :, None] * tags[:, t, None, :].to(writes.dtype)
    return torch.stack(contents, dim=1)


def class_share(recording, labels, classes):
    """labels [B, T] -> share [B, T, N]: the fraction of row i's content that is the class of step t,
    from earlier steps only (0 for an empty row)."""
    contents = row_contents(recording, F.one_hot(labels, classes))  # [B, T, N, C]
    total = contents.sum(-1)
    same = contents.gather(-1, labels[:, :, None, None].expand(*labels.shape, contents.shape[2], 1))[..., 0]
    return same / total.clamp(min=1e-12)


def read_mass(recording, share):
    """Read weight on the rows holding the step's class, averaged over heads -> [B, T] in [0, 1]."""
    return (recording.read_weights.mean(2) * share).sum(-1)


def retrieval_loss(recording, labels, instances, classes, new_reads_nothing=False):
    """The auxiliary loss of the retrieving variant: -log(read mass on the rows that hold earlier drawings
    of the step's class), averaged over the steps whose class was seen before (instance >= 2).

    new_reads_nothing (for a model with a null row, whose reads may sum to less than 1): the steps of a
    class shown for the first time count too, with -log(the read weight left to nothing), so that a new
    class is recognised as new.
    """
    share = class_share(recording, labels, classes)
    target = read_mass(recording, share)
    if new_reads_nothing:
        nothing = 1.0 - recording.read_weights.sum(-1).mean(2)  # [B, T]
        target = torch.where(instances >= 2, target, nothing)
        return -torch.log(target.clamp(min=0) + 1e-6).mean()
    return -torch.log(target[instances >= 2] + 1e-6).mean()


def retrieval_stats(recording, labels, instances, classes):
    """Per-step measures of retrieval, for the steps whose class was seen before (instance >= 2):

    top_hit [B, T]: 1 when the row most read (over heads) mostly holds the step's class;
    mass [B, T]: the read weight on the rows that hold the class (over heads, averaged);
    focus [B, T]: 1 - entropy of the read weights / log N (0 for a uniform read, 1 for a one-hot one);
    lost [B, T]: 1 when no row holds the class any more: every row written with it was overwritten or cleared
        before this step (memory pressure: more drawings than rows);
    seen [B, T]: bool, the steps these measures apply to.
    """
    share = class_share(recording, labels, classes)
    lost = (~(share > MAJORITY).any(-1)).float()
    weights = recording.read_weights.mean(2)  # [B, T, N]
    top = weights.argmax(-1, keepdim=True)
    top_hit = (share.gather(-1, top)[..., 0] > MAJORITY).float()
    entropy = -(weights * torch.log(weights.clamp(min=1e-12))).sum(-1)
    focus = 1.0 - entropy / math.log(weights.shape[-1])
    return {"top_hit": top_hit, "mass": read_mass(recording, share), "focus": focus, "lost": lost,
            "seen": instances >= 2}
