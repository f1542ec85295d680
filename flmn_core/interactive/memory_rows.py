"""What each memory row holds at one step, and how focused a read is: the facts the memory view draws.

A row of FLMN's feature memory (or of MANN's memory) receives, at every step s, the write weight w^w_s(i)
of Eq. (8), and is emptied when Eq. (7) clears it. After step t it therefore still holds

    sources[s, i] = w^w_s(i) * prod_{u = s+1 .. t} (1 - cleared_u(i))

of what step s wrote: `retrieval.row_contents` with one tag per step, computed for the last step only
(O(T N) instead of O(T^2 N), so that the app can afford it at every stroke). The drawing x_s "that wrote"
row i is the step with the largest such weight; a row in which no step left at least HOLDS holds no
drawing: it only carries the thin film that the interpolated write of Eq. (6) spreads over every row.

FLMN's label memory is written one step later in the same rows (Eq. 9), so row i of the label memory
holds the label of the drawing in row i of the feature memory (with clear_label_rows, the default).

Shapes: T steps (0..t), N rows, R heads, C classes.
"""

import math
from typing import NamedTuple

import torch

from flmn_core.model.networks import FLMN, MANN, FLMNTrace, MANNTrace
from flmn_core.model.retrieval import MAJORITY

# The least weight of one step's write still in a row for that row to count as holding that drawing. A
# least-used write puts 1 - sigma(alpha) there (0.45 and more in the shipped checkpoints); the film that
# Eq. (6) spreads with sigma(alpha) w^r_{t-1} over all rows gives each row about sigma(alpha) / N per step.
HOLDS = 0.1
NO_ROW = -1  # writer / label of a row that holds no drawing, or whose label is not given yet


class RowView(NamedTuple):
    """What each of the N rows holds after step t (tensors on the CPU).

    writer: [N] long, the step s whose write is the largest still in the row, NO_ROW if none holds HOLDS.
    kept: [N], the weight of that write still in the row.
    label: [N] long, the label given for the writer step, NO_ROW for none (or the current step, whose
        label is not given yet).
    same_label: [N] bool, the row holds an earlier drawing (s < t) of step t's label: more than MAJORITY
        of its content from steps before t is of that label (as `retrieval.class_share` counts it), and
        one of those steps left at least HOLDS. All False when step t's label is not known.
    label_known: whether step t's label is given, i.e. whether same_label says anything: before the
        label, which rows hold the class is not known (nothing is marked, and nothing may be claimed).
    replaced, replaced_label: [N] long, for each row that held a drawing after step t - 1 and holds
        another (or none) after step t, the step whose drawing step t overwrote and its label; NO_ROW for
        every other row.
    """

    writer: torch.Tensor
    kept: torch.Tensor
    label: torch.Tensor
    same_label: torch.Tensor
    label_known: bool = True
    replaced: torch.Tensor | None = None
    replaced_label: torch.Tensor | None = None


class ReadFocus(NamedTuple):
    """How focused each head's read is (one value per head, [R]).

    top_weight, top_row: the largest read weight and its row.
    entropy: the entropy of the read over the rows (weights renormalised to sum 1) / log N: 0 when one
        row takes all of it, 1 for a uniform read; NaN when the read took nothing at all.
    nothing: 1 - the sum of the weights: what a null-row model (or an empty masked memory) read nothing from.
    same_label: the weight on the rows holding earlier drawings of the step's label (RowView.same_label).
    no_drawing: the weight on the rows that hold no drawing (empty, or only the film of Eq. 6).
    """

    top_weight: torch.Tensor
    top_row: torch.Tensor
    entropy: torch.Tensor
    nothing: torch.Tensor
    same_label: torch.Tensor
    no_drawing: torch.Tensor


def addressing_of(state, trace):
    """One step's (read weights [R, N], write weights [N] summed over heads, cleared [N]) from the
    (state, trace) of model.step with a batch of 1, as the model itself reports them for a Recording."""
    if isinstance(trace, FLMNTrace):
        read, write, cleared = FLMN.addressing_of(state, trace)
    elif isinstance(trace, MANNTrace):
        read, write, cleared = MANN.addressing_of(state, trace)
    else:
        raise TypeError(f"expected the trace of an FLMN or MANN step, not {type(trace).__name__}")
    return read[0], write[0].sum(0), cleared[0]


def history(steps):
    """The write weights and cleared rows of steps 0..t: steps is a list of (state, trace) pairs (or
    interactive.Step) -> (write [T, N], cleared [T, N])."""
    pairs = [addressing_of(*state_and_trace(step))[1:] for step in steps]
    if not pairs:
        raise ValueError("history needs at least one step")
    write, cleared = zip(*pairs)
    return torch.stack(write).float(), torch.stack(cleared).float()


def state_and_trace(step):
    """An interactive.Step or a (state, trace) pair -> (state, trace)."""
    return (step.state, step.trace) if hasattr(step, "trace") else step


def row_sources(write, cleared):
    """How much of each step's write each row still holds after the last step.

    write, cleared: [T, N] (cleared: the rows Eq. (7) emptied at each step, before that step's write)
    -> sources [T, N]: sources[s, i] = write[s, i] * prod_{u = s+1 .. T-1} (1 - cleared[u, i]).
    """
    kept = 1.0 - cleared
    # survival[s] = prod_{u > s} kept[u]: a reversed cumulative product, shifted by one step.
    after = torch.flip(torch.cumprod(torch.flip(kept, [0]), 0), [0])  # after[s] = prod_{u >= s} kept[u]
    survival = torch.cat([after[1:], torch.ones_like(after[:1])])
    return write * survival


def describe_steps(steps, labels):
    """What each row holds after the last of `steps` (a list of interactive.Step or (state, trace) for
    steps 0..t of one model, batch of 1); labels: the labels given so far (any beyond t are ignored)."""
    return describe_rows(*history(steps), list(labels)[: len(steps)])


def describe_rows(write, cleared, labels):
    """What each row holds after the last step t = T - 1 of a history.

    write, cleared: [T, N] (`history`); labels: the labels given so far, a list or [T'] tensor of ints in
    0..C-1 for steps 0..T'-1 (T' <= T: the labels of the last steps may not be given yet) -> RowView.
    """
    T, N = write.shape
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    if len(labels) > T:
        raise ValueError(f"{len(labels)} labels for a history of {T} steps")
    step_label = torch.full((T,), NO_ROW, dtype=torch.long)
    step_label[: len(labels)] = labels
    sources = row_sources(write, cleared)  # [T, N]
    writer, kept = holders(sources)
    label = torch.where(writer >= 0, step_label[writer.clamp(min=0)], NO_ROW)
    same_label = torch.zeros(N, dtype=torch.bool)
    current = step_label[T - 1]
    if current != NO_ROW and T > 1:
        earlier = sources[: T - 1]  # the content step t's read finds from before it, as retrieval counts it
        share = earlier[step_label[: T - 1] == current].sum(0) / earlier.sum(0).clamp(min=1e-12)
        same_label = (share > MAJORITY) & (earlier.max(0).values >= HOLDS)
    before = holders(row_sources(write[: T - 1], cleared[: T - 1]))[0] if T > 1 else torch.full((N,), NO_ROW)
    replaced = torch.where((before >= 0) & (before != writer), before, NO_ROW)
    replaced_label = torch.where(replaced >= 0, step_label[replaced.clamp(min=0)], NO_ROW)
    return RowView(writer, kept, label, same_label, bool(current != NO_ROW), replaced, replaced_label)


def holders(sources):
    """sources [T, N] (row_sources) -> (writer [N] long, kept [N]): the step whose write is the largest
    still in each row and that weight; writer NO_ROW where no step left at least HOLDS."""
    kept, writer = sources.max(0)
    return torch.where(kept >= HOLDS, writer, NO_ROW), kept


def read_focus(read_weights, rows):
    """read_weights: [R, N] (or [N]) of one step; rows: its RowView -> ReadFocus, one value per head."""
    weights = torch.as_tensor(read_weights, dtype=torch.float32)
    weights = weights[None] if weights.ndim == 1 else weights
    total = weights.sum(-1)
    top_weight, top_row = weights.max(-1)
    spread = weights / total.clamp(min=1e-12)[:, None]
    entropy = -(spread * torch.log(spread.clamp(min=1e-12))).sum(-1) / math.log(weights.shape[-1])
    entropy = torch.where(total > 1e-6, entropy, torch.nan)
    return ReadFocus(top_weight, top_row, entropy, (1.0 - total).clamp(min=0.0),
                     (weights * rows.same_label).sum(-1), (weights * (rows.writer == NO_ROW)).sum(-1))


def weight_by_label(read_weights, rows, classes):
    """The read weight (averaged over heads) on the rows holding a drawing of each label.

    read_weights: [R, N] -> [C + 2]: labels 0..C-1, then the rows whose drawing has no label yet (the
    current step's), then the rows holding no drawing. With what was read from nothing, they sum to 1.
    """
    weights = torch.as_tensor(read_weights, dtype=torch.float32)
    weights = (weights[None] if weights.ndim == 1 else weights).mean(0)
    bins = torch.where(rows.writer == NO_ROW, classes + 1, torch.where(rows.label == NO_ROW, classes, rows.label))
    return torch.zeros(classes + 2).index_add_(0, bins, weights)
