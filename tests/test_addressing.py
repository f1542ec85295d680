"""Each equation of flmn_core.model.addressing against a plain NumPy loop (float64), its shapes, and its invariants.

Shapes: B batch, R heads, N memory rows, W word size.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flmn_core.model import addressing

# Small, fast property runs: the whole file takes a few seconds.
FAST = settings(max_examples=40, deadline=None)
FLOATS = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=64)


# ---------------------------------------------------------------------------------------------------------
# The reference: each equation written as the obvious loop over batch, heads and rows.


def loop_cosine(keys, memory):
    """Eq. (1) per (b, h, i): k . M(i) / (||k|| ||M(i)|| + eps)."""
    B, R, _ = keys.shape
    N = memory.shape[1]
    out = np.zeros((B, R, N))
    for b in range(B):
        for h in range(R):
            for i in range(N):
                k, m = keys[b, h], memory[b, i]
                norms = math.sqrt(np.dot(k, k)) * math.sqrt(np.dot(m, m))
                out[b, h, i] = np.dot(k, m) / (norms + addressing.COSINE_EPS)
    return out


def loop_read_weights(similarity, strength=None):
    """Eq. (2) per (b, h): exp(beta K(i)) / sum_j exp(beta K(j)), beta = 1 without a strength."""
    B, R, N = similarity.shape
    out = np.zeros((B, R, N))
    for b in range(B):
        for h in range(R):
            beta = 1.0 if strength is None else strength[b, h, 0]
            exps = [math.exp(beta * similarity[b, h, i]) for i in range(N)]
            out[b, h] = [e / sum(exps) for e in exps]
    return out


def loop_read_memory(weights, memory):
    """Eq. (3) per (b, h): sum_i w(i) M(i)."""
    B, R, N = weights.shape
    out = np.zeros((B, R, memory.shape[2]))
    for b in range(B):
        for h in range(R):
            for i in range(N):
                out[b, h] += weights[b, h, i] * memory[b, i]
    return out


def loop_usage(prev_usage, read_weights, write_weights, gamma):
    """Eq. (4) per (b, i): gamma u(i) + sum_h (w^r_h(i) + w^w_h(i))."""
    B, R, N = read_weights.shape
    out = np.zeros((B, N))
    for b in range(B):
        for i in range(N):
            out[b, i] = gamma * prev_usage[b, i] + sum(read_weights[b, h, i] + write_weights[b, h, i] for h in range(R))
    return out


def loop_least_used(usage, heads):
    """Eq. (5), one head per row: head h takes the h-th smallest usage, ties to the lower row index."""
    B, N = usage.shape
    out = np.zeros((B, heads, N))
    for b in range(B):
        order = sorted(range(N), key=lambda i: (usage[b, i], i))
        for h in range(heads):
            out[b, h, order[h]] = 1.0
    return out


def loop_write_weights(gate, prev_read_weights, prev_least_used):
    """Eq. (6) per (b, h): sigma(alpha_h) w^r_h + (1 - sigma(alpha_h)) w^lu_h; gate [R] or [B, R]."""
    B, R, N = prev_read_weights.shape
    gate = np.broadcast_to(gate, (B, R))
    out = np.zeros((B, R, N))
    for b in range(B):
        for h in range(R):
            sigma = 1.0 / (1.0 + math.exp(-gate[b, h]))
            out[b, h] = sigma * prev_read_weights[b, h] + (1.0 - sigma) * prev_least_used[b, h]
    return out


def loop_clear_rows(memory, prev_least_used):
    """Eq. (7): a copy of memory with every row that some head marks as least used set to 0."""
    out = memory.copy()
    B, R, N = prev_least_used.shape
    for b in range(B):
        for h in range(R):
            for i in range(N):
                if prev_least_used[b, h, i] > 0:
                    out[b, i] = 0.0
    return out


def loop_write_memory(memory, weights, add):
    """Eqs. (8), (10) per (b, i): M(i) + sum_h w_h(i) a_h."""
    out = memory.copy()
    B, R, N = weights.shape
    for b in range(B):
        for i in range(N):
            for h in range(R):
                out[b, i] += weights[b, h, i] * add[b, h]
    return out


# ---------------------------------------------------------------------------------------------------------
# Random inputs


def softmax_rows(rng, *shape):
    """Random weights [..., N] that are non-negative and sum to 1 over the last axis."""
    x = np.exp(rng.normal(size=shape))
    return x / x.sum(-1, keepdims=True)


def one_hot_rows(rng, B, R, N):
    """Least-used weights [B, R, N]: one distinct row per head."""
    out = np.zeros((B, R, N))
    for b in range(B):
        out[b, np.arange(R), rng.permutation(N)[:R]] = 1.0
    return out


@st.composite
def keys_and_memory(draw):
    """(keys [B, R, W], memory [B, N, W]) in float64, some memory rows all zero, sometimes a zero key."""
    B, R, N, W = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 6))
    keys = draw(arrays(np.float64, (B, R, W), elements=FLOATS))
    memory = draw(arrays(np.float64, (B, N, W), elements=FLOATS))
    memory[draw(arrays(np.bool_, (B, N)))] = 0.0
    keys[draw(arrays(np.bool_, (B, R)))] = 0.0
    return keys, memory


@st.composite
def usages(draw):
    """(usage [B, N] with many ties, heads R <= N)."""
    B, N = draw(st.integers(1, 3)), draw(st.integers(1, 10))
    usage = draw(arrays(np.float64, (B, N), elements=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.25])))
    return usage, draw(st.integers(1, N))


t = torch.from_numpy


# ---------------------------------------------------------------------------------------------------------
# Shapes


def test_every_function_returns_the_documented_shape():
    B, R, N, W = 2, 3, 7, 5
    rng = np.random.default_rng(0)
    keys, memory = t(rng.normal(size=(B, R, W))), t(rng.normal(size=(B, N, W)))
    weights, lu = t(softmax_rows(rng, B, R, N)), t(one_hot_rows(rng, B, R, N))
    assert addressing.cosine_similarity(keys, memory).shape == (B, R, N)
    assert addressing.read_weights(t(rng.normal(size=(B, R, N)))).shape == (B, R, N)
    assert addressing.read_weights(t(rng.normal(size=(B, R, N))), t(np.ones((B, R, 1)))).shape == (B, R, N)
    assert addressing.read_memory(weights, memory).shape == (B, R, W)
    assert addressing.update_usage(t(rng.random((B, N))), weights, lu, 0.95).shape == (B, N)
    assert addressing.least_used(t(rng.random((B, N))), R).shape == (B, R, N)
    assert addressing.write_weights(t(np.zeros(R)), weights, lu).shape == (B, R, N)
    assert addressing.write_weights(t(np.zeros((B, R))), weights, lu).shape == (B, R, N)
    assert addressing.clear_rows(memory, lu).shape == (B, N, W)
    assert addressing.write_memory(memory, weights, t(rng.normal(size=(B, R, W)))).shape == (B, N, W)


# ---------------------------------------------------------------------------------------------------------
# Values against the loops


@FAST
@given(keys_and_memory())
def test_cosine_similarity_matches_the_loop(inputs):
    keys, memory = inputs
    got = addressing.cosine_similarity(t(keys), t(memory)).numpy()
    np.testing.assert_allclose(got, loop_cosine(keys, memory), rtol=1e-9, atol=1e-12)


@FAST
@given(keys_and_memory(), st.booleans(), st.floats(1.0, 20.0))
def test_read_weights_match_the_loop(inputs, with_strength, beta):
    keys, memory = inputs
    similarity = loop_cosine(keys, memory)
    strength = np.full(keys.shape[:2] + (1,), beta) if with_strength else None
    got = addressing.read_weights(t(similarity), None if strength is None else t(strength)).numpy()
    np.testing.assert_allclose(got, loop_read_weights(similarity, strength), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_read_memory_matches_the_loop(seed):
    rng = np.random.default_rng(seed)
    weights, memory = softmax_rows(rng, 2, 3, 6), rng.normal(size=(2, 6, 4))
    np.testing.assert_allclose(addressing.read_memory(t(weights), t(memory)).numpy(),
                               loop_read_memory(weights, memory), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed, gamma", [(0, 0.95), (1, 0.0), (2, 1.0)])
def test_update_usage_matches_the_loop(seed, gamma):
    rng = np.random.default_rng(seed)
    prev, read, write = rng.random((2, 6)) * 3, softmax_rows(rng, 2, 3, 6), softmax_rows(rng, 2, 3, 6)
    np.testing.assert_allclose(addressing.update_usage(t(prev), t(read), t(write), gamma).numpy(),
                               loop_usage(prev, read, write, gamma), rtol=1e-12, atol=1e-12)


@FAST
@given(usages())
def test_least_used_matches_the_loop(inputs):
    usage, heads = inputs
    np.testing.assert_array_equal(addressing.least_used(t(usage), heads).numpy(), loop_least_used(usage, heads))


@pytest.mark.parametrize("per_batch_gate", [False, True])
@pytest.mark.parametrize("seed", range(2))
def test_write_weights_match_the_loop(seed, per_batch_gate):
    rng = np.random.default_rng(seed)
    gate = rng.normal(size=(2, 3) if per_batch_gate else 3) * 3
    read, lu = softmax_rows(rng, 2, 3, 6), one_hot_rows(rng, 2, 3, 6)
    np.testing.assert_allclose(addressing.write_weights(t(gate), t(read), t(lu)).numpy(),
                               loop_write_weights(gate, read, lu), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_clear_rows_matches_the_loop(seed):
    rng = np.random.default_rng(seed)
    memory, lu = rng.normal(size=(2, 6, 4)), one_hot_rows(rng, 2, 3, 6)
    np.testing.assert_array_equal(addressing.clear_rows(t(memory), t(lu)).numpy(), loop_clear_rows(memory, lu))


@pytest.mark.parametrize("seed", range(3))
def test_write_memory_matches_the_loop(seed):
    rng = np.random.default_rng(seed)
    memory, weights, add = rng.normal(size=(2, 6, 4)), softmax_rows(rng, 2, 3, 6), rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(addressing.write_memory(t(memory), t(weights), t(add)).numpy(),
                               loop_write_memory(memory, weights, add), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Invariants


@FAST
@given(keys_and_memory(), st.one_of(st.none(), st.floats(1.0, 50.0)))
def test_read_weights_are_a_distribution_without_nan(inputs, beta):
    """Eqs. (1)-(2) on any keys and memory, all-zero rows and keys included: finite, >= 0, summing to 1."""
    keys, memory = inputs
    similarity = addressing.cosine_similarity(t(keys), t(memory))
    assert torch.isfinite(similarity).all()
    assert (similarity.abs() <= 1.0 + 1e-9).all()
    strength = None if beta is None else torch.full(keys.shape[:2] + (1,), beta, dtype=torch.float64)
    weights = addressing.read_weights(similarity, strength)
    assert torch.isfinite(weights).all()
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(keys.shape[:2], dtype=torch.float64))


def test_all_zero_memory_is_read_uniformly():
    """A fresh (all-zero) memory has similarity exactly 0 to any key, zero key included: uniform weights."""
    keys = torch.tensor([[[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    memory = torch.zeros(1, 4, 3, dtype=torch.float64)
    similarity = addressing.cosine_similarity(keys, memory)
    assert torch.equal(similarity, torch.zeros(1, 2, 4, dtype=torch.float64))
    weights = addressing.read_weights(similarity)
    torch.testing.assert_close(weights, torch.full((1, 2, 4), 0.25, dtype=torch.float64))
    assert torch.equal(addressing.read_memory(weights, memory), torch.zeros(1, 2, 3, dtype=torch.float64))


@FAST
@given(usages())
def test_least_used_picks_the_smallest_usages(inputs):
    """One row per head, distinct rows, none of them used more than any row left out; ties to lower index."""
    usage, heads = inputs
    lu = addressing.least_used(t(usage), heads).numpy()
    assert set(np.unique(lu)) <= {0.0, 1.0}
    np.testing.assert_array_equal(lu.sum(-1), np.ones(lu.shape[:2]))  # one row per head
    for b in range(usage.shape[0]):
        rows = lu[b].argmax(-1)
        assert len(set(rows)) == heads  # distinct rows
        others = np.setdiff1d(np.arange(usage.shape[1]), rows)
        if len(others):
            assert usage[b, rows].max() <= usage[b, others].min()
        # Head h has the h-th smallest usage; among equal usages the lower row comes first.
        pairs = [(usage[b, r], r) for r in rows]
        assert pairs == sorted(pairs)
        for r in rows:
            assert not any(usage[b, o] == usage[b, r] and o < r for o in others)


@FAST
@given(usages(), st.integers(1, 5))
def test_clear_rows_zeroes_exactly_the_least_used_rows(inputs, width):
    usage, heads = inputs
    B, N = usage.shape
    memory = torch.arange(1, B * N * width + 1, dtype=torch.float64).reshape(B, N, width)  # no zero entry
    lu = addressing.least_used(t(usage), heads)
    cleared = addressing.clear_rows(memory, lu)
    chosen = lu.sum(1) > 0  # [B, N]
    assert (cleared[chosen] == 0).all()
    assert torch.equal(cleared[~chosen], memory[~chosen])
    assert int(chosen.sum()) == B * heads


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(4, 9), st.floats(-30.0, 30.0), st.integers(0, 2**31 - 1))
def test_write_weights_are_a_distribution(B, R, N, gate, seed):
    """Eq. (6) interpolates two distributions, so it is one: >= 0 and summing to 1 for each head."""
    rng = np.random.default_rng(seed)
    read, lu = t(softmax_rows(rng, B, R, N)), t(one_hot_rows(rng, B, R, N))
    gates = t(np.full(R, gate) + rng.normal(size=R))
    weights = addressing.write_weights(gates, read, lu)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, R, dtype=torch.float64))
