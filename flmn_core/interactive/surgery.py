"""Memory surgery: wipe or freeze memory rows, or change the usage decay gamma, and replay the steps.

The app's models are shared by every session (st.cache_resource), so nothing here changes a model or a
state in place: every function returns a new state, and a different gamma runs a shallow copy of the
model that shares its weights and carries its own config.

    edit = Edit(step=4, wipe=(12, 17))                 # as step 5 begins, rows 12 and 17 are emptied
    steps = edited_run(model, inputs, original, edit)  # the steps 0..t again, with the edit

A wiped row is what a row that was never written is: zeros in the memory (FLMN: the feature and the
label memory) and zero usage, so the least-used choice of Eq. (5) may pick it next. A frozen row is read
and written as usual within a step, then given back the content it had as the edit's step began, after
every step from then on: its drawing can be read but never replaced.

Shapes: B batch (1 in the app), N rows, W word size, C classes.
"""

import copy
import dataclasses
from dataclasses import dataclass

import torch

from flmn_core.interactive.episode import Step, run_step
from flmn_core.model import addressing
from flmn_core.model.networks import FLMNState, MANNState


@dataclass(frozen=True)
class Edit:
    """A change to one model's memory and usage decay for a replay of an episode.

    step: the step (0-based) as which begins the rows are wiped (and from which they are frozen).
    wipe, freeze: row numbers (FLMN: rows of the feature memory and the label memory alike).
    gamma: the usage decay of Eq. (4) for the whole episode; None keeps the model's.
    """

    step: int = 0
    wipe: tuple = ()
    freeze: tuple = ()
    gamma: float | None = None

    def __post_init__(self):
        if self.step < 0:
            raise ValueError(f"an edit's step is 0 or more, not {self.step}")
        for name in ("wipe", "freeze"):
            rows = getattr(self, name)
            if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in rows):
                raise ValueError(f"{name} takes row numbers from 0, not {rows!r}")
        if self.gamma is not None and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma (the usage decay) must be between 0 and 1, not {self.gamma}")

    @property
    def changes_memory(self):
        """Whether rows are wiped or frozen."""
        return bool(self.wipe or self.freeze)


def memory_fields(state):
    """The names of the state's fields that hold memory rows: FLMN's two memories, MANN's one."""
    if isinstance(state, FLMNState):
        return ("feature_memory", "label_memory")
    if isinstance(state, MANNState):
        return ("memory",)
    raise TypeError(f"expected an FLMNState or a MANNState, not {type(state).__name__}")


def row_mask(state, rows):
    """Row numbers -> bool [N] over the state's memory rows; a row outside 0..N-1 raises ValueError."""
    N = state.usage.shape[-1]
    bad = [r for r in rows if not 0 <= r < N]
    if bad:
        raise ValueError(f"rows {bad} are outside the memory's rows 0..{N - 1}")
    mask = torch.zeros(N, dtype=torch.bool)
    mask[list(rows)] = True
    return mask


def wipe_rows(state, rows):
    """A copy of the state with the rows emptied: zero memory rows (FLMN: feature and label memory) and
    zero usage; the least-used rows of Eq. (5) are chosen again from that usage, as the state's own
    least_used always follows its usage."""
    mask = row_mask(state, rows)
    changes = {name: getattr(state, name).masked_fill(mask[None, :, None], 0.0) for name in memory_fields(state)}
    usage = state.usage.masked_fill(mask[None], 0.0)
    heads = state.least_used.shape[1]
    return state._replace(usage=usage, least_used=addressing.least_used(usage, heads), **changes)


def restore_rows(state, source, rows):
    """A copy of the state whose memory rows `rows` are those of `source` (another state of the same
    model); usage and everything else stay the state's."""
    mask = row_mask(state, rows)[None, :, None]
    return state._replace(**{name: torch.where(mask, getattr(source, name), getattr(state, name))
                             for name in memory_fields(state)})


def with_gamma(model, gamma):
    """The model with another usage decay: a shallow copy sharing the weights (never copied, never
    changed), with its own config. gamma None, or the model's own, gives the model itself."""
    if gamma is None or gamma == model.config.gamma:
        return model
    clone = copy.copy(model)  # a new instance dict: assigning its config leaves the shared model's alone
    clone.config = dataclasses.replace(model.config, gamma=float(gamma))
    return clone


@torch.no_grad()
def logits_of(model, state):
    """The classifier's output for a state, as model.step computes it from [h_t, r_t] -> logits [B, C]."""
    return model.classifier(torch.cat([state.hidden, state.read], dim=1))


@torch.no_grad()
def replay(model, inputs, edit, start=0, state=None):
    """Run steps start..T-1 with an edit.

    inputs: [(image [20, 20], prev_label [1, C])] for steps 0..T-1; state: the state before step `start`
    (None at the start of an episode) -> [interactive.Step] for steps start..T-1. The rows are wiped as
    step edit.step begins, and from then on the frozen rows get back, after each step, the content they
    had as edit.step began. The edit's step must not come before `start`, unless it wipes or freezes nothing.
    """
    if edit.changes_memory and edit.step < start:
        raise ValueError(f"the edit begins at step {edit.step}, before the replay's first step {start}")
    model = with_gamma(model, edit.gamma)
    frozen, steps = None, []
    for t in range(start, len(inputs)):
        image, prev_label = inputs[t]
        if t == edit.step and edit.changes_memory:
            state = state if state is not None else model.initial_state(1, dtype=image.dtype)
            state = wipe_rows(state, edit.wipe) if edit.wipe else state
            frozen = state
        step = run_step(model, image, prev_label, state)
        if frozen is not None and edit.freeze:
            step = Step(step.probabilities, restore_rows(step.state, frozen, edit.freeze), step.trace)
        steps.append(step)
        state = step.state
    return steps


def edited_run(model, inputs, original, edit):
    """Steps 0..T-1 of an episode with an edit, reusing the unedited steps before it.

    inputs: as in `replay`; original: [interactive.Step] of the unedited run, at least for the steps
    before the edit -> [interactive.Step] for steps 0..T-1. A new gamma changes every step from the first;
    rows wiped or frozen change the steps from edit.step on (none, if edit.step >= T).
    """
    if edit.gamma is not None and edit.gamma != model.config.gamma:
        return replay(model, inputs, edit)
    start = min(edit.step, len(inputs))
    return list(original[:start]) + replay(model, inputs, edit, start, original[start - 1].state if start else None)
