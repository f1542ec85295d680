"""The memory equations of MANN (Santoro et al. 2016) and FLMN (Mureja et al. 2017), one function each.

Equation numbers are those of the FLMN paper; MANN uses Eqs. (1), (2), (4)-(8) on its single memory.
Shapes use one key of letters everywhere:
    B batch, R heads (read heads; FLMN has one), N memory rows, W word size.
Every function is pure: it takes tensors and returns new ones, so a step can be replayed and tested.
"""

import torch
import torch.nn.functional as F

# Added to the norms' product in Eq. (1) so that an all-zero memory row (a cleared or unused row) has
# similarity 0 instead of NaN.
COSINE_EPS = 1e-8


def cosine_similarity(keys, memory):
    """Eq. (1): K(k, M(i)) = k . M(i) / (||k|| ||M(i)||).

    keys: [B, R, W], memory: [B, N, W] -> similarity: [B, R, N], in [-1, 1].
    """
    dots = torch.bmm(keys, memory.transpose(1, 2))
    norms = keys.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)
    return dots / (norms + COSINE_EPS)


def read_weights(similarity, strength=None, readable=None):
    """Eq. (2): w^r(i) = exp(K(i)) / sum_j exp(K(j)), a softmax over the rows.

    similarity: [B, R, N]; strength: None (the papers' unscaled softmax) or [B, R, 1], a key strength
    beta >= 0 that sharpens the softmax to exp(beta K(i)) (a variant, as in the NTM's content addressing);
    readable: None (every row) or bool [B, N], the rows that may take weight (a variant: the softmax runs
    over these rows only, and a memory with none reads nothing).
    -> read_weights: [B, R, N], non-negative, each head's weights summing to 1 (0 where nothing is readable).
    """
    if strength is not None:
        similarity = similarity * strength
    if readable is None:
        return F.softmax(similarity, dim=-1)
    readable = readable.unsqueeze(1)
    # A large negative, not -inf: a memory with no readable row gives a finite uniform softmax, zeroed here.
    return F.softmax(similarity.masked_fill(~readable, -1e4), dim=-1) * readable


def read_weights_with_null(similarity, null_similarity, strength=None, readable=None):
    """Eq. (2) with one more, always-empty row whose similarity is null_similarity (a variant): the softmax
    runs over the N rows and the null row, and the null row's share is dropped (it reads zeros), so the
    weights sum to less than 1 when no row matches the key better than the threshold.

    similarity: [B, R, N]; null_similarity: [R]; strength, readable: as in read_weights.
    -> read_weights: [B, R, N], non-negative, each head's weights summing to at most 1.
    """
    null = null_similarity.view(1, -1, 1).expand(similarity.shape[0], -1, 1)
    scores = torch.cat([similarity, null], dim=-1)
    if readable is not None:
        readable = torch.cat([readable, torch.ones_like(readable[:, :1])], dim=-1)
    return read_weights(scores, strength, readable)[..., :-1]


def holds_something(memory):
    """The rows of memory [B, N, W] that hold anything (not all zero: written and not cleared) -> bool [B, N]."""
    return memory.detach().abs().amax(-1) > 0


def read_memory(weights, memory):
    """Eq. (3): r = sum_i w^r(i) M(i), the weighted sum of memory rows.

    For FLMN the weights come from the feature memory and the memory read is the LABEL memory.
    weights: [B, R, N], memory: [B, N, W] -> read vectors: [B, R, W].
    """
    return torch.bmm(weights, memory)


def update_usage(prev_usage, read_weights, write_weights, gamma):
    """Eq. (4): w^u_t = gamma w^u_{t-1} + w^r_t + w^w_t, summed over heads.

    prev_usage: [B, N]; read_weights, write_weights: [B, R, N]; gamma: decay in [0, 1] -> usage: [B, N].
    """
    return gamma * prev_usage + read_weights.sum(1) + write_weights.sum(1)


def least_used(usage, num_rows):
    """Eq. (5): w^lu(i) = 1 if w^u(i) is among the num_rows smallest usages, else 0.

    The paper writes one vector with num_rows ones (m(w^u, n) is the n-th smallest usage). We return one
    one-hot vector per head instead: head h gets the row with the h-th smallest usage, so that heads never
    write to the same least-used row and each head's write weights (Eq. 6) still sum to 1. Summed over
    heads this is the paper's vector. Ties go to the lower row index. Not differentiable, as in the paper.

    usage: [B, N] -> least_used: [B, num_rows, N], one-hot rows.
    """
    rows = torch.argsort(usage, dim=-1, stable=True)[:, :num_rows]  # [B, R]; stable: ties to the lower row
    one_hot = torch.zeros(usage.shape[0], num_rows, usage.shape[1], dtype=usage.dtype, device=usage.device)
    return one_hot.scatter_(2, rows.unsqueeze(-1), 1.0)


def write_weights(gate, prev_read_weights, prev_least_used):
    """Eq. (6): w^w_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}.

    Interpolates between writing where the previous step read (updating a memory) and the least-used row
    (a fresh memory). gate: alpha before the sigmoid, [R] or [B, R];
    prev_read_weights, prev_least_used: [B, R, N] -> write_weights: [B, R, N].
    """
    sigma = torch.sigmoid(gate).unsqueeze(-1)
    return sigma * prev_read_weights + (1.0 - sigma) * prev_least_used


def clear_rows(memory, prev_least_used):
    """Eq. (7): M_t(i) <- 0 for the least-used rows of the previous step, before writing.

    memory: [B, N, W]; prev_least_used: [B, R, N] (one-hot per head) -> memory: [B, N, W].
    """
    keep = 1.0 - prev_least_used.sum(1).clamp(max=1.0)
    return memory * keep.unsqueeze(-1)


def write_memory(memory, weights, add):
    """Eqs. (8) and (10): M_t(i) = M_{t-1}(i) + sum_h w_h(i) a_h, an additive write.

    memory: [B, N, W]; weights: [B, R, N]; add: [B, R, W] -> memory: [B, N, W].
    """
    return memory + torch.bmm(weights.transpose(1, 2), add)
