"""FLMN and MANN: shapes, forward = step, a NumPy reference of the memory step, gradcheck, the recursive
label write (Eq. 9), and the trace the app draws.

Shapes: B batch, T steps, C classes, H controller units, R heads, N rows, W word size.
"""

import numpy as np
import pytest
import torch
from torch import nn

import flmn_core
from flmn_core.model import addressing

# Small sizes that still exercise every path: N/2 = 4 FLMN rows, a label word narrower than the feature word.
SMALL_FLMN = dict(classes=3, controller_size=16, memory_rows=8, word_size=5, label_word_size=4)
SMALL_MANN = dict(classes=3, controller_size=16, memory_rows=8, word_size=5)
VARIANTS = {
    "flmn": ("flmn", SMALL_FLMN),
    "flmn-key-strength": ("flmn", dict(SMALL_FLMN, key_strength=True)),
    "flmn-read-first": ("flmn", dict(SMALL_FLMN, read_first=True)),
    "flmn-keep-label-rows": ("flmn", dict(SMALL_FLMN, clear_label_rows=False)),
    "flmn-mask-empty-rows": ("flmn", dict(SMALL_FLMN, mask_empty_rows=True)),
    "flmn-retrieving": ("flmn", dict(SMALL_FLMN, read_first=True, key_strength=True, mask_empty_rows=True,
                                     null_row=True)),
    "flmn-conv": ("flmn", dict(SMALL_FLMN, read_first=True, key_strength=True, mask_empty_rows=True, null_row=True,
                               encoder="conv")),
    "mann": ("mann", SMALL_MANN),
    "mann-4-heads-add": ("mann", dict(SMALL_MANN, read_heads=4, write_content="add")),
    "mann-key-strength": ("mann", dict(SMALL_MANN, key_strength=True)),
    "mann-read-first": ("mann", dict(SMALL_MANN, read_first=True)),
    "mann-null-row": ("mann", dict(SMALL_MANN, read_heads=2, mask_empty_rows=True, null_row=True)),
    "mann-conv": ("mann", dict(SMALL_MANN, encoder="conv")),
}


def make_model(variant, seed=0, dtype=torch.float32):
    """A model of VARIANTS[variant] with seeded weights and a random (not the initial 0) write gate alpha."""
    name, config = VARIANTS[variant] if isinstance(variant, str) else variant
    torch.manual_seed(seed)
    model = flmn_core.build_model(name, **config).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.gate.copy_(torch.randn(model.gate.shape, generator=generator, dtype=dtype))
        if model.null_similarity is not None:  # a random threshold, not the initial 0
            model.null_similarity.copy_(torch.randn(model.null_similarity.shape, generator=generator, dtype=dtype) * 0.3)
    return model


def random_episode(B, T, C, seed=0, dtype=torch.float32):
    """images [B, T, 20, 20] in [0, 1], prev_labels [B, T, C]: one-hot labels shifted by one, zeros at t = 0."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(B, T, 20, 20, generator=g, dtype=dtype)
    one_hot = nn.functional.one_hot(torch.randint(0, C, (B, T), generator=g), C).to(dtype)
    prev_labels = torch.cat([torch.zeros_like(one_hot[:, :1]), one_hot[:, :-1]], dim=1)
    return images, prev_labels


def run_steps(model, images, prev_labels):
    """Step through an episode -> (logits [B, T, C], states before each step, states after, traces)."""
    state, befores, afters, traces, logits = None, [], [], [], []
    for t in range(images.shape[1]):
        befores.append(state if state is not None else model.initial_state(images.shape[0], dtype=images.dtype))
        logits_t, state, trace = model.step(images[:, t], prev_labels[:, t], state)
        logits.append(logits_t)
        afters.append(state)
        traces.append(trace)
    return torch.stack(logits, 1), befores, afters, traces


def drawn(state, trace):
    """A step's state and trace as one dict of what the app draws, FLMN's single head squeezed out."""
    values = state._asdict() | trace._asdict()
    if isinstance(trace, flmn_core.model.networks.FLMNTrace):
        for key in ("read_weights", "least_used", "feature_write_weights"):
            values[key] = values[key][:, 0]
    return values


# ---------------------------------------------------------------------------------------------------------
# The reference: one memory step transcribed from the papers in NumPy, given the controller output h_t.


def np64(tensor):
    return tensor.detach().numpy().astype(np.float64)


def cosine(keys, memory):
    """Eq. (1): keys [B, R, W], memory [B, N, W] -> [B, R, N]."""
    dots = np.einsum("brw,bnw->brn", keys, memory)
    norms = np.linalg.norm(keys, axis=-1)[:, :, None] * np.linalg.norm(memory, axis=-1)[:, None, :]
    return dots / (norms + addressing.COSINE_EPS)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def read_softmax(model, scores, beta, memory):
    """Eq. (2) with the variants, as written in FLMNConfig/MANNConfig: scores [B, R, N] (cosines), beta
    [B, R, 1], memory [B, N, W] -> [B, R, N]. mask_empty_rows: the softmax runs over the rows that hold
    something; null_row: over them and one more row of similarity theta (per head), whose share is dropped."""
    B, R, N = scores.shape
    readable = np.ones((B, N), bool)
    if model.config.mask_empty_rows:
        readable = np.abs(memory).max(-1) > 0
    weights = np.zeros((B, R, N))
    for b in range(B):
        for r in range(R):
            logits = [beta[b, r, 0] * scores[b, r, i] for i in range(N) if readable[b, i]]
            if model.config.null_row:
                logits.append(beta[b, r, 0] * np64(model.null_similarity)[r])
            if not logits:
                continue
            shares = softmax(np.array(logits))
            weights[b, r, readable[b]] = shares[: int(readable[b].sum())]
    return weights


def smallest_rows(usage, heads):
    """Eq. (5): [B, N] -> [B, R, N], head h one-hot at the h-th smallest usage (ties to the lower row)."""
    out = np.zeros((usage.shape[0], heads, usage.shape[1]))
    for b in range(usage.shape[0]):
        out[b, np.arange(heads), np.argsort(usage[b], kind="stable")[:heads]] = 1.0
    return out


def heads_output(model, hidden):
    """The interface layer on h_t that gives keys, add vectors and the key strength."""
    return np64(hidden) @ np64(model.interface.weight).T + np64(model.interface.bias)


def strength_of(raw):
    """beta = 1 + softplus(raw)."""
    return 1.0 + np.log1p(np.exp(raw))


def classify(model, hidden, read):
    return np.concatenate([np64(hidden), read], axis=1) @ np64(model.classifier.weight).T + np64(model.classifier.bias)


def reference_flmn_step(model, prev, hidden):
    """FLMN's Eqs. (1)-(10) from prev (FLMNState before the step) and h_t -> dict of the new values."""
    c = model.config
    W, WL = c.word_size, c.label_word_size
    out = heads_output(model, hidden)
    key, feature_add, label_add = np.tanh(out[:, :W]), np.tanh(out[:, W : 2 * W]), np.tanh(out[:, 2 * W : 2 * W + WL])
    beta = strength_of(out[:, -1:]) if c.key_strength else np.ones((out.shape[0], 1))
    sigma = 1.0 / (1.0 + np.exp(-np64(model.gate)[0]))
    prev_lu = np64(prev.least_used)[:, 0]
    feature_write = sigma * np64(prev.read_weights)[:, 0] + (1 - sigma) * prev_lu  # Eq. (6)
    keep = (1.0 - prev_lu)[:, :, None]
    feature_memory = np64(prev.feature_memory) * keep  # Eq. (7)
    label_memory = np64(prev.label_memory) * keep if c.clear_label_rows else np64(prev.label_memory)
    before_write = feature_memory
    feature_memory = feature_memory + feature_write[:, :, None] * feature_add[:, None, :]  # Eq. (8)
    label_write = np64(prev.feature_write_weights)[:, 0]  # Eq. (9): w^wl_t = w^wf_{t-1}
    label_memory = label_memory + label_write[:, :, None] * label_add[:, None, :]  # Eq. (10)
    addressed = before_write if c.read_first else feature_memory
    read_weights = read_softmax(model, cosine(key[:, None, :], addressed), beta[:, :, None], addressed)[:, 0]
    read = np.einsum("bn,bnw->bw", read_weights, label_memory)  # Eq. (3), from the LABEL memory
    usage = c.gamma * np64(prev.usage) + read_weights + feature_write  # Eq. (4)
    return dict(read_weights=read_weights, usage=usage, least_used=smallest_rows(usage, 1)[:, 0],
                feature_write_weights=feature_write, label_write_weights=label_write,
                feature_memory=feature_memory, label_memory=label_memory, read=read,
                logits=classify(model, hidden, read))


def reference_mann_step(model, prev, hidden):
    """MANN (LRUA) from prev (MANNState before the step) and h_t -> dict of the new values."""
    c = model.config
    R, W = c.read_heads, c.word_size
    B = hidden.shape[0]
    out = heads_output(model, hidden)
    keys = np.tanh(out[:, : R * W]).reshape(B, R, W)
    content = np.tanh(out[:, R * W : 2 * R * W]).reshape(B, R, W) if c.write_content == "add" else keys
    beta = strength_of(out[:, -R:])[:, :, None] if c.key_strength else np.ones((B, R, 1))
    sigma = (1.0 / (1.0 + np.exp(-np64(model.gate))))[None, :, None]
    prev_lu, prev_memory = np64(prev.least_used), np64(prev.memory)
    write = sigma * np64(prev.read_weights) + (1 - sigma) * prev_lu  # Eq. (6), per head
    memory = prev_memory * (1.0 - np.minimum(prev_lu.sum(1), 1.0))[:, :, None]  # Eq. (7)
    memory = memory + np.einsum("brn,brw->bnw", write, content)  # Eq. (8)
    # read_first (documented as "read M_{t-1} before this step's write"): address and read the old memory.
    source = prev_memory if c.read_first else memory
    read_weights = read_softmax(model, cosine(keys, source), beta, source)  # Eqs. (1), (2)
    read = np.einsum("brn,bnw->brw", read_weights, source).reshape(B, R * W)  # Eq. (3)
    usage = c.gamma * np64(prev.usage) + read_weights.sum(1) + write.sum(1)  # Eq. (4)
    return dict(read_weights=read_weights, usage=usage, least_used=smallest_rows(usage, R), write_weights=write,
                memory=memory, read=read, logits=classify(model, hidden, read))


# ---------------------------------------------------------------------------------------------------------
# Shapes and the two ways of running an episode


@pytest.mark.parametrize("name", ["flmn", "mann"])
def test_paper_defaults_and_shapes(name):
    """The default configs are the papers' (LSTM 200, N 128, M 40, gamma 0.95, no variant switched on) and
    map a 5-way 10-shot batch to [B, T, C] finite logits."""
    model = flmn_core.build_model(name)
    c = model.config
    assert (c.classes, c.controller_size, c.memory_rows, c.word_size, c.gamma) == (5, 200, 128, 40, 0.95)
    assert not c.key_strength and not c.read_first
    if name == "flmn":
        assert c.label_word_size == 40 and c.clear_label_rows
        assert model.initial_state(2).feature_memory.shape == (2, 64, 40)  # N/2 x M
    else:
        assert c.read_heads == 1 and c.write_content == "key"
    images, prev_labels = random_episode(2, 50, 5)
    with torch.no_grad():
        logits = model(images, prev_labels)
    assert logits.shape == (2, 50, 5)
    assert torch.isfinite(logits).all()
    assert logits.std() > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_equals_stepping(variant):
    """model(images, prev_labels) is exactly model.step applied T times from the initial state."""
    model = make_model(variant)
    images, prev_labels = random_episode(3, 7, model.config.classes, seed=1)
    with torch.no_grad():
        logits = model(images, prev_labels)
        stepped = run_steps(model, images, prev_labels)[0]
    assert logits.shape == (3, 7, model.config.classes)
    torch.testing.assert_close(logits, stepped, atol=1e-5, rtol=0)
    assert not torch.allclose(logits[:, 0], logits[:, -1])  # the memory changes the output over the episode


@pytest.mark.parametrize("variant", ["flmn", "mann-4-heads-add", "flmn-conv"])
def test_episodes_in_a_batch_are_independent(variant):
    model = make_model(variant)
    images, prev_labels = random_episode(3, 6, model.config.classes, seed=2)
    with torch.no_grad():
        together = model(images, prev_labels)
        alone = model(images[1:2], prev_labels[1:2])
    torch.testing.assert_close(together[1:2], alone, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# Every step against the NumPy reference


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_step_follows_the_equations(variant):
    """Over a whole episode (float64), every step's memories, weights, usage, read vector and logits are
    those of the reference transcription of the paper, given the controller output h_t."""
    model = make_model(variant, seed=3, dtype=torch.float64)
    images, prev_labels = random_episode(2, 8, model.config.classes, seed=3, dtype=torch.float64)
    is_flmn = isinstance(model, flmn_core.FLMN)
    reference_step = reference_flmn_step if is_flmn else reference_mann_step
    with torch.no_grad():
        logits, befores, afters, traces = run_steps(model, images, prev_labels)
    for t, (prev, state, trace) in enumerate(zip(befores, afters, traces)):
        expected = reference_step(model, prev, state.hidden)
        got = drawn(state, trace) | dict(read=state.read, logits=logits[:, t])
        for key, value in expected.items():
            np.testing.assert_allclose(np64(got[key]), value, rtol=1e-9, atol=1e-12, err_msg=f"step {t}: {key}")
        # The state carries the same values to the next step.
        np.testing.assert_allclose(np64(state.usage), expected["usage"], rtol=1e-12, atol=1e-12)
        memory = state.feature_memory if is_flmn else state.memory
        np.testing.assert_allclose(np64(memory), expected["feature_memory" if is_flmn else "memory"], rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("variant", ["flmn", "mann"])
def test_controller_sees_the_previous_read_vector(variant):
    """The read vector r_{t-1} feeds the next controller step, as in both papers."""
    model = make_model(variant, dtype=torch.float64)
    images, prev_labels = random_episode(1, 3, model.config.classes, dtype=torch.float64)
    with torch.no_grad():
        _, state, _ = model.step(images[:, 0], prev_labels[:, 0])
        _, state, _ = model.step(images[:, 1], prev_labels[:, 1], state)
        _, same, _ = model.step(images[:, 2], prev_labels[:, 2], state)
        _, changed, _ = model.step(images[:, 2], prev_labels[:, 2], state._replace(read=state.read + 0.5))
    assert not torch.allclose(same.hidden, changed.hidden)


@pytest.mark.parametrize("variant", ["flmn", "mann-4-heads-add"])
def test_initial_state_is_empty(variant):
    """Empty memories and usage; the first least-used rows are 0..R-1 (ties to the lower row)."""
    model = make_model(variant)
    state = model.initial_state(2)
    heads = 1 if isinstance(model, flmn_core.FLMN) else model.config.read_heads
    memories = [state.feature_memory, state.label_memory] if isinstance(model, flmn_core.FLMN) else [state.memory]
    assert all(not m.any() for m in memories)
    assert not state.usage.any() and not state.read_weights.any() and not state.read.any()
    assert state.least_used.argmax(-1).tolist() == [list(range(heads))] * 2
    assert torch.equal(state.least_used.sum(-1), torch.ones(2, heads))


# ---------------------------------------------------------------------------------------------------------
# Gradients


class Stepper(nn.Module):
    """model.step as a module's forward, so that torch.func.functional_call can swap in its parameters."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image, prev_label, state):
        return self.model.step(image, prev_label, state)


GRADCHECK_SIZES = dict(classes=2, controller_size=4, memory_rows=4, word_size=3)


@pytest.mark.parametrize("name, config", [
    ("flmn", dict(GRADCHECK_SIZES)),
    ("flmn", dict(GRADCHECK_SIZES, key_strength=True, read_first=True, clear_label_rows=False, mask_empty_rows=True,
                  null_row=True)),
    ("mann", dict(GRADCHECK_SIZES)),
    ("mann", dict(GRADCHECK_SIZES, read_heads=2, write_content="add", key_strength=True, read_first=True)),
], ids=["flmn", "flmn-variants", "mann", "mann-variants"])
def test_gradcheck_through_a_whole_step(name, config):
    """float64 gradcheck of one step (after 3 warm-up steps, so every memory row is in use) with respect to
    the image, the previous label, the recurrent state and the weights after the input projection."""
    model = make_model((name, config), seed=4, dtype=torch.float64)
    images, prev_labels = random_episode(1, 4, config["classes"], seed=4, dtype=torch.float64)
    with torch.no_grad():
        state = None
        for t in range(3):
            state = model.step(images[:, t], prev_labels[:, t], state)[1]
    memory = state.feature_memory if name == "flmn" else state.memory
    assert (memory.norm(dim=-1) > 1e-3).all()  # away from the zero-norm kink of Eq. (1)
    fields = [f for f in state._fields if f != "least_used"]  # least_used is a constant one-hot
    # The input projection's weight is left out: its gradient is the image's times the input, checked above.
    names = [n for n, _ in model.named_parameters() if n != "input_gates.weight"]
    params = dict(model.named_parameters())
    stepper = Stepper(model)

    def step(image, prev_label, *tensors):
        prev = state._replace(**dict(zip(fields, tensors[: len(fields)])))
        weights = {f"model.{n}": v for n, v in zip(names, tensors[len(fields) :])}
        logits, new, _ = torch.func.functional_call(stepper, weights, (image, prev_label, prev), strict=False)
        return (logits, *(getattr(new, f) for f in fields))

    inputs = [images[:, 3], prev_labels[:, 3], *(getattr(state, f) for f in fields), *(params[n] for n in names)]
    inputs = [x.detach().clone().requires_grad_(True) for x in inputs]
    assert torch.autograd.gradcheck(step, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# FLMN's label memory and the trace


@pytest.mark.parametrize("clear_label_rows", [True, False])
def test_label_write_is_recursive(clear_label_rows):
    """Eqs. (9)-(10): the label write weights at t are the feature write weights of t-1, and the label memory
    changes by w^wl_t (outer) a^l_t, i.e. only in the rows written with the previous image's feature."""
    model = make_model(("flmn", dict(SMALL_FLMN, clear_label_rows=clear_label_rows)), seed=5, dtype=torch.float64)
    images, prev_labels = random_episode(2, 8, model.config.classes, seed=5, dtype=torch.float64)
    with torch.no_grad():
        _, _, states, traces = run_steps(model, images, prev_labels)
    traces = [drawn(state, trace) for state, trace in zip(states, traces)]
    assert not traces[0]["label_write_weights"].any()  # nothing to label at t = 0 ...
    assert not traces[0]["label_memory"].any()  # ... so the label memory stays empty
    for t in range(1, len(traces)):
        prev, now = traces[t - 1], traces[t]
        assert torch.equal(now["label_write_weights"], prev["feature_write_weights"])
        before = prev["label_memory"]
        if clear_label_rows:  # Eq. (7) on the label memory: the rows least used after t-1
            before = before * (1 - prev["least_used"]).unsqueeze(-1)
        delta = now["label_memory"] - before  # [B, N/2, WL]
        weights = now["label_write_weights"]  # [B, N/2]
        row = weights.argmax(-1)
        add = delta[torch.arange(2), row] / weights[torch.arange(2), row].unsqueeze(-1)  # a^l_t, [B, WL]
        assert add.abs().max() > 0.01
        assert (add.abs() <= 1 + 1e-9).all()  # tanh output
        torch.testing.assert_close(delta, weights.unsqueeze(-1) * add.unsqueeze(1), atol=1e-12, rtol=1e-9)


def test_label_goes_to_the_row_of_the_previous_feature():
    """With the gate nearly closed (sigma(alpha) ~ 1e-17) every write is a one-hot at the least-used row: the
    label row written at step t is exactly the feature row written at t-1, and no other row changes."""
    model = make_model("flmn", seed=6, dtype=torch.float64)
    with torch.no_grad():
        model.gate.fill_(-40.0)
    images, prev_labels = random_episode(1, 9, model.config.classes, seed=6, dtype=torch.float64)
    with torch.no_grad():
        _, _, states, traces = run_steps(model, images, prev_labels)
    traces = [drawn(state, trace) for state, trace in zip(states, traces)]
    rows = model.config.memory_rows // 2
    feature_rows = []
    for t in range(len(traces)):
        before = traces[t - 1]["feature_memory"] * (1 - traces[t - 1]["least_used"]).unsqueeze(-1) if t else 0
        changed = ((traces[t]["feature_memory"] - before).abs().amax(-1) > 1e-9)[0]
        assert int(changed.sum()) == 1
        feature_rows.append(int(changed.nonzero()[0, 0]))
    assert len(set(feature_rows[:rows])) == rows  # fresh rows first: each least-used row once
    for t in range(1, len(traces)):
        before = traces[t - 1]["label_memory"] * (1 - traces[t - 1]["least_used"]).unsqueeze(-1)
        changed = ((traces[t]["label_memory"] - before).abs().amax(-1) > 1e-9)[0]
        assert changed.nonzero()[:, 0].tolist() == [feature_rows[t - 1]]


def test_flmn_trace_holds_what_the_app_draws():
    model = make_model("flmn")
    images, prev_labels = random_episode(2, 3, model.config.classes)
    with torch.no_grad():
        _, _, states, traces = run_steps(model, images, prev_labels)
    state, trace = states[-1], drawn(states[-1], traces[-1])
    N, W, WL = 4, 5, 4
    shapes = {"read_weights": (2, N), "usage": (2, N), "least_used": (2, N), "feature_write_weights": (2, N),
              "label_write_weights": (2, N), "feature_memory": (2, N, W), "label_memory": (2, N, WL),
              "write_gate": (1,)}
    assert {key: tuple(trace[key].shape) for key in shapes} == shapes
    torch.testing.assert_close(trace["read_weights"].sum(-1), torch.ones(2))
    assert torch.equal(trace["least_used"].sum(-1), torch.ones(2))
    assert torch.equal(trace["least_used"].argmax(-1), trace["usage"].argmin(-1))
    torch.testing.assert_close(trace["feature_write_weights"].sum(-1), torch.ones(2))
    torch.testing.assert_close(trace["write_gate"], torch.sigmoid(model.gate.detach()))
    assert torch.equal(trace["feature_memory"], state.feature_memory)
    assert torch.equal(trace["label_memory"], state.label_memory)
    assert torch.equal(trace["usage"], state.usage)


def test_mann_trace_holds_what_the_app_draws():
    model = make_model("mann-4-heads-add")
    images, prev_labels = random_episode(2, 3, model.config.classes)
    with torch.no_grad():
        _, _, states, traces = run_steps(model, images, prev_labels)
    state, trace = states[-1], drawn(states[-1], traces[-1])
    R, N, W = 4, 8, 5
    shapes = {"read_weights": (2, R, N), "usage": (2, N), "least_used": (2, R, N), "write_weights": (2, R, N),
              "memory": (2, N, W), "write_gate": (R,)}
    assert {key: tuple(trace[key].shape) for key in shapes} == shapes
    torch.testing.assert_close(trace["read_weights"].sum(-1), torch.ones(2, R))
    torch.testing.assert_close(trace["write_weights"].sum(-1), torch.ones(2, R))
    # The R least-used rows are the R rows of smallest usage, distinct.
    chosen = trace["least_used"].argmax(-1).sort(-1).values
    assert torch.equal(chosen, trace["usage"].argsort(-1)[:, :R].sort(-1).values)
    torch.testing.assert_close(trace["write_gate"], torch.sigmoid(model.gate.detach()))
    assert torch.equal(trace["memory"], state.memory)


def test_an_empty_memory_reads_nothing_and_the_null_row_takes_what_matches_nothing():
    """mask_empty_rows: at t = 0 no row holds anything, so nothing is read (weights and read vector 0) and
    empty rows never take weight; null_row: the weights sum to less than 1, the rest read from nowhere."""
    model = make_model(("flmn", dict(SMALL_FLMN, read_first=True, mask_empty_rows=True, null_row=True)))
    images, prev_labels = random_episode(2, 3, model.config.classes)
    with torch.no_grad():
        states, traces = run_steps(model, images, prev_labels)[2:]
    assert not states[0].read_weights.any() and not states[0].read.any()
    for state, trace in zip(states[1:], traces[1:]):
        assert not state.read_weights[:, 0][~trace.readable].any()
        total = state.read_weights.sum(-1)
        assert (total > 0).all() and (total < 1).all()


def test_bad_configs_are_refused_with_a_message():
    for name, config, message in [
        ("flmn", dict(classes=1), "classes must be at least 2"),
        ("flmn", dict(classes=1_500_000), "classes must be between 1 and 100"),
        ("mann", dict(controller_size=0), "controller_size must be between 1 and 4096"),
        ("mann", dict(read_heads=5, memory_rows=4), r"read_heads \(5\) cannot exceed memory_rows \(4\)"),
        ("flmn", dict(gamma=1.5), "gamma"),
        ("flmn", dict(word_size=2.5), "word_size must be a whole number"),
        ("flmn", dict(key_strength="yes"), "key_strength must be true or false"),
        ("mann", dict(gamma=float("nan")), "gamma must be a finite number"),
        ("flmn", dict(encoder="resnet"), "encoder must be one of 'pixels', 'conv', not 'resnet'"),
    ]:
        with pytest.raises(ValueError, match=message):
            flmn_core.build_model(name, **config)
    with pytest.raises(ValueError, match="memory_rows must be even"):
        flmn_core.build_model("flmn", memory_rows=7)
    with pytest.raises(ValueError, match="write_content"):
        flmn_core.build_model("mann", write_content="erase")
    with pytest.raises(ValueError, match="unknown model 'ntm'"):
        flmn_core.build_model("ntm")


@pytest.mark.parametrize("name", ["flmn", "mann"])
def test_weights_of_fewer_labels_load_with_fresh_rows_for_the_new_labels(name):
    """--warm-start from a checkpoint of 5 labels into a model of 15: the first 5 labels' logits are the old
    model's, the new labels' weights are the new model's own initialisation."""
    torch.manual_seed(0)
    small, big = flmn_core.build_model(name, classes=5), flmn_core.build_model(name, classes=15)
    fresh = {key: value.clone() for key, value in big.state_dict().items()}
    flmn_core.model.networks.load_widening_labels(big, small.state_dict())
    labels = torch.randint(0, 5, (2, 9))
    images = torch.rand(2, 9, 20, 20)
    old = small(images, flmn_core.data.episodes.offset_labels(labels, 5))
    new = big(images, flmn_core.data.episodes.offset_labels(labels, 15))
    torch.testing.assert_close(new[..., :5], old, rtol=0, atol=1e-5)
    assert torch.equal(big.classifier.weight[5:], fresh["classifier.weight"][5:])
    assert torch.equal(big.input_gates.weight[:, -10:], fresh["input_gates.weight"][:, -10:])
    with pytest.raises(ValueError, match="shape"):
        flmn_core.model.networks.load_widening_labels(flmn_core.build_model(name, classes=15, controller_size=8),
                                              small.state_dict())
