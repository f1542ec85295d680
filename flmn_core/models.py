"""MANN (Santoro et al. 2016) and FLMN (Mureja et al. 2017): an LSTM controller with an external memory.

Both models read an episode one step at a time. At step t the controller sees the image x_t, the one-hot
label of the previous step y_{t-1} and the previous read vector r_{t-1}; it emits a key and add vectors;
the memory is written and read with the equations of `flmn_core.addressing`; the classifier sees the
controller output h_t and the read vector r_t.

Shapes: B batch, T steps, C classes, H controller units, R heads, N rows, W word size.

    model(images [B, T, 20, 20], prev_labels [B, T, C]) -> logits [B, T, C]
    model.step(image [B, 20, 20], prev_label [B, C], state=None) -> (logits [B, C], state, trace)
"""

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import addressing
from .data import IMAGE_SIZE


@dataclass(frozen=True)
class FLMNConfig:
    """FLMN's settings; the defaults are the paper's."""

    classes: int = 5  # C: labels per episode, the one-hot input y_{t-1} and the classifier's outputs
    controller_size: int = 200  # H: LSTM units
    memory_rows: int = 128  # N: rows in all, split into N/2 feature rows and N/2 label rows
    word_size: int = 40  # M: width of a feature-memory row
    label_word_size: int = 40  # width of a label-memory row (the paper uses N/2 x M for both memories)
    gamma: float = 0.95  # usage decay of Eq. (4)
    key_strength: bool = False  # variant: a learned strength beta_t >= 1 sharpens the read softmax
    clear_label_rows: bool = True  # Eq. (7) also clears the label row of a cleared feature row
    read_first: bool = False  # variant: read the feature memory before this step's feature write


@dataclass(frozen=True)
class MANNConfig:
    """MANN's settings; the defaults are Santoro et al.'s with one read head (the FLMN paper's baseline)."""

    classes: int = 5  # C
    controller_size: int = 200  # H
    memory_rows: int = 128  # N
    word_size: int = 40  # M
    read_heads: int = 1  # R: 1 for the FLMN paper's comparison, 4 as Santoro et al.
    gamma: float = 0.95  # usage decay of Eq. (4)
    write_content: str = "key"  # "key": write k_t as the paper; "add": a separate add vector a_t
    key_strength: bool = False  # variant: a learned strength beta_t >= 1 sharpens the read softmax
    read_first: bool = False  # variant: read M_{t-1} before this step's write (the paper reads M_t)

    def __post_init__(self):
        if self.write_content not in ("key", "add"):
            raise ValueError(f"write_content must be 'key' or 'add', not {self.write_content!r}")


class FLMNState(NamedTuple):
    """FLMN's recurrent state after a step (the `prev_` values of the next step)."""

    hidden: torch.Tensor  # [B, H] LSTM output h
    cell: torch.Tensor  # [B, H] LSTM cell
    read: torch.Tensor  # [B, W_label] label-memory read vector r
    read_weights: torch.Tensor  # [B, 1, N/2] w^r
    usage: torch.Tensor  # [B, N/2] w^u
    least_used: torch.Tensor  # [B, 1, N/2] w^lu
    feature_write_weights: torch.Tensor  # [B, 1, N/2] w^wf, the next step's label write weights (Eq. 9)
    feature_memory: torch.Tensor  # [B, N/2, W] M^f
    label_memory: torch.Tensor  # [B, N/2, W_label] M^l


class MANNState(NamedTuple):
    """MANN's recurrent state after a step."""

    hidden: torch.Tensor  # [B, H]
    cell: torch.Tensor  # [B, H]
    read: torch.Tensor  # [B, R * W] the R read vectors, concatenated
    read_weights: torch.Tensor  # [B, R, N]
    usage: torch.Tensor  # [B, N]
    least_used: torch.Tensor  # [B, R, N]
    memory: torch.Tensor  # [B, N, W]


class MemoryNetwork(nn.Module):
    """What MANN and FLMN share: the LSTM controller, the classifier and the loop over steps.

    Subclasses define `memory_step(controller_output, state) -> (state, trace)` and `initial_state`.
    The image and label part of the controller's input is projected for all T steps in one matmul
    before the loop, since it does not depend on the recurrence.
    """

    def __init__(self, config, read_size):
        super().__init__()
        self.config = config
        hidden = config.controller_size
        self.input_gates = nn.Linear(IMAGE_SIZE * IMAGE_SIZE + config.classes, 4 * hidden)
        self.recurrent_gates = nn.Linear(read_size + hidden, 4 * hidden, bias=False)
        self.classifier = nn.Linear(hidden + read_size, config.classes)
        with torch.no_grad():  # forget-gate bias 1: remember by default early in training
            self.input_gates.bias[hidden : 2 * hidden].fill_(1.0)

    def lstm_cell(self, gates_in, prev_hidden, prev_cell, prev_read):
        """One LSTM step. gates_in: [B, 4H], the projected (x_t, y_{t-1}) -> hidden, cell: [B, H]."""
        gates = gates_in + self.recurrent_gates(torch.cat([prev_read, prev_hidden], dim=1))
        i, f, g, o = gates.chunk(4, dim=1)
        cell = torch.sigmoid(f) * prev_cell + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(cell), cell

    def project_inputs(self, images, prev_labels):
        """images: [B, T, 20, 20], prev_labels: [B, T, C] -> controller input gates [B, T, 4H]."""
        return self.input_gates(torch.cat([images.flatten(2), prev_labels], dim=2))

    def forward(self, images, prev_labels):
        """Run whole episodes. images: [B, T, 20, 20] (ink 1), prev_labels: [B, T, C] -> logits [B, T, C]."""
        gates_in = self.project_inputs(images, prev_labels)  # [B, T, 4H]
        state = self.initial_state(images.shape[0], dtype=gates_in.dtype)
        hiddens, reads = [], []
        for gates_t in gates_in.unbind(1):  # unbind, not gates_in[:, t]: its backward is one stack, not T fills
            state = self.advance(gates_t, state, with_trace=False)[0]
            hiddens.append(state.hidden)
            reads.append(state.read)
        # The classifier runs once on all T steps: one large matmul instead of T small ones.
        return self.classifier(torch.cat([torch.stack(hiddens, dim=1), torch.stack(reads, dim=1)], dim=2))

    def step(self, image, prev_label, state=None):
        """One step, for interactive use. image: [B, 20, 20], prev_label: [B, C], state from the last
        step or None to start an episode -> (logits [B, C], state, trace: dict of tensors to show)."""
        if state is None:
            state = self.initial_state(image.shape[0], dtype=image.dtype)
        gates_in = self.project_inputs(image.unsqueeze(1), prev_label.unsqueeze(1))[:, 0]
        state, trace = self.advance(gates_in, state, with_trace=True)
        return self.classifier(torch.cat([state.hidden, state.read], dim=1)), state, trace

    def advance(self, gates_in, state, with_trace):
        """Controller then memory for one step -> (state, trace or None)."""
        hidden, cell = self.lstm_cell(gates_in, state.hidden, state.cell, state.read)
        return self.memory_step(hidden, cell, state, with_trace)

    def key_strength(self, raw):
        """beta = 1 + softplus(raw) >= 1, or None (the papers' unscaled softmax). raw: [B, R] -> [B, R, 1]."""
        return None if raw is None else (1.0 + nn.functional.softplus(raw)).unsqueeze(-1)

    def config_dict(self):
        """The config as a plain dict, as stored in checkpoints."""
        return asdict(self.config)


class FLMN(MemoryNetwork):
    """Feature-Label Memory Network (Mureja, Park, Yoo 2017).

    Two memories of N/2 rows: the feature memory M^f stores what the controller writes about an image;
    the label memory M^l stores, in the same row, the label that arrives one step later. Per step t:

        k_t, a^f_t, a^l_t = tanh(heads(h_t))
        w^wf_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}          Eq. (6)
        clear the rows of w^lu_{t-1} in M^f (and in M^l, see below)             Eq. (7)
        M^f_t = M^f_{t-1} + w^wf_t a^f_t                                        Eq. (8)
        w^wl_t = w^wf_{t-1};  M^l_t = M^l_{t-1} + w^wl_t a^l_t                  Eqs. (9), (10)
        w^r_t = softmax(K(k_t, M^f_t));  r_t = sum_i w^r_t(i) M^l_t(i)          Eqs. (1)-(3)
        w^u_t = gamma w^u_{t-1} + w^r_t + w^wf_t;  w^lu_t from w^u_t            Eqs. (4), (5)

    Choices where the paper is silent (each an option of FLMNConfig):
    - clear_label_rows=True: a cleared feature row also clears its label row, so a fresh feature is never
      paired with a stale label. False clears the feature memory only, as Eq. (7) is written.
    - label_word_size = word_size (the paper's N/2 x M for both memories).
    - Reads use M_t, after this step's writes, as the equations index them; read_first=True reads the
      feature memory before this step's feature write (the label memory is read after its write, which
      brings in the label of x_{t-1}), so the row holding x_t itself, whose label is not known yet, does not
      take read weight.
    - The classifier sees [h_t, r_t], as in MANN; the key, add vectors and gate alpha are a tanh layer on
      h_t and one learned scalar.
    """

    def __init__(self, config=FLMNConfig()):
        if config.memory_rows % 2:
            raise ValueError(f"memory_rows must be even (N/2 feature + N/2 label rows), got {config.memory_rows}")
        super().__init__(config, read_size=config.label_word_size)
        self.rows = config.memory_rows // 2
        self.heads = nn.Linear(config.controller_size, 2 * config.word_size + config.label_word_size + config.key_strength)
        self.gate = nn.Parameter(torch.zeros(1))  # alpha of Eq. (6), one head

    def initial_state(self, batch_size, dtype=torch.float32):
        """Empty memories, zero usage; the first least-used row is row 0."""
        c, B, N = self.config, batch_size, self.rows
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=self.gate.device)  # noqa: E731
        usage = zeros(B, N)
        return FLMNState(
            hidden=zeros(B, c.controller_size), cell=zeros(B, c.controller_size), read=zeros(B, c.label_word_size),
            read_weights=zeros(B, 1, N), usage=usage, least_used=addressing.least_used(usage, 1),
            feature_write_weights=zeros(B, 1, N),
            feature_memory=zeros(B, N, c.word_size), label_memory=zeros(B, N, c.label_word_size),
        )

    def memory_step(self, hidden, cell, state, with_trace):
        c = self.config
        W, WL = c.word_size, c.label_word_size
        out = self.heads(hidden)
        vectors = torch.tanh(out[:, : 2 * W + WL]).unsqueeze(1)  # [B, 1, 2W + WL]
        key, feature_add, label_add = vectors[..., :W], vectors[..., W : 2 * W], vectors[..., 2 * W :]
        strength = self.key_strength(out[:, 2 * W + WL :] if c.key_strength else None)

        feature_write = addressing.write_weights(self.gate, state.read_weights, state.least_used)
        feature_memory = addressing.clear_rows(state.feature_memory, state.least_used)
        label_memory = state.label_memory
        if c.clear_label_rows:
            label_memory = addressing.clear_rows(label_memory, state.least_used)
        before_write = feature_memory
        feature_memory = addressing.write_memory(feature_memory, feature_write, feature_add)
        label_memory = addressing.write_memory(label_memory, state.feature_write_weights, label_add)

        similarity = addressing.cosine_similarity(key, before_write if c.read_first else feature_memory)
        read_weights = addressing.read_weights(similarity, strength)
        read = addressing.read_memory(read_weights, label_memory)
        with torch.no_grad():  # usage only feeds the hard least-used choice: no gradient flows through it
            usage = addressing.update_usage(state.usage, read_weights, feature_write, c.gamma)
            least_used = addressing.least_used(usage, 1)

        new_state = FLMNState(hidden, cell, read.flatten(1), read_weights, usage, least_used, feature_write,
                              feature_memory, label_memory)
        trace = None
        if with_trace:
            trace = {
                "read_weights": read_weights[:, 0], "usage": usage, "least_used": least_used[:, 0],
                "feature_write_weights": feature_write[:, 0], "label_write_weights": state.feature_write_weights[:, 0],
                "feature_memory": feature_memory, "label_memory": label_memory, "write_gate": torch.sigmoid(self.gate),
            }
        return new_state, trace


class MANN(MemoryNetwork):
    """Memory-Augmented Neural Network with least-recently-used access (Santoro et al. 2016).

    One N x M memory and R read heads. Per step t, for each head h:

        k_t = tanh(heads(h_t))  (and a_t, if write_content="add")
        w^w_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}          Eq. (6)
        clear the rows of w^lu_{t-1}                                            Eq. (7)
        M_t = M_{t-1} + w^w_t k_t                                               Eq. (8)
        w^r_t = softmax(K(k_t, M_t));  r_t = sum_i w^r_t(i) M_t(i)              Eqs. (1)-(3)
        w^u_t = gamma w^u_{t-1} + sum_h (w^r_t + w^w_t)                         Eq. (4)
        w^lu_t: the R rows of smallest usage, one per head                      Eq. (5)

    Santoro et al. write the key k_t and read M_t after the write; public implementations differ, so
    write_content="add" writes a separate add vector and read_first=True reads M_{t-1}. Each head has its
    own gate alpha and its own least-used row (see `addressing.least_used`).
    """

    def __init__(self, config=MANNConfig()):
        R, W = config.read_heads, config.word_size
        super().__init__(config, read_size=R * W)
        adds = R * W if config.write_content == "add" else 0
        self.heads = nn.Linear(config.controller_size, R * W + adds + (R if config.key_strength else 0))
        self.gate = nn.Parameter(torch.zeros(R))  # alpha of Eq. (6), one per head

    def initial_state(self, batch_size, dtype=torch.float32):
        c, B, N, R = self.config, batch_size, self.config.memory_rows, self.config.read_heads
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=self.gate.device)  # noqa: E731
        usage = zeros(B, N)
        return MANNState(
            hidden=zeros(B, c.controller_size), cell=zeros(B, c.controller_size), read=zeros(B, R * c.word_size),
            read_weights=zeros(B, R, N), usage=usage, least_used=addressing.least_used(usage, R),
            memory=zeros(B, N, c.word_size),
        )

    def memory_step(self, hidden, cell, state, with_trace):
        c = self.config
        B, R, W = hidden.shape[0], c.read_heads, c.word_size
        out = self.heads(hidden)
        keys = torch.tanh(out[:, : R * W]).view(B, R, W)
        content = keys
        if c.write_content == "add":
            content = torch.tanh(out[:, R * W : 2 * R * W]).view(B, R, W)
        strength = self.key_strength(out[:, -R:] if c.key_strength else None)

        write = addressing.write_weights(self.gate, state.read_weights, state.least_used)
        memory = addressing.clear_rows(state.memory, state.least_used)
        memory = addressing.write_memory(memory, write, content)
        similarity = addressing.cosine_similarity(keys, state.memory if c.read_first else memory)
        read_weights = addressing.read_weights(similarity, strength)
        read = addressing.read_memory(read_weights, state.memory if c.read_first else memory)
        with torch.no_grad():  # usage only feeds the hard least-used choice: no gradient flows through it
            usage = addressing.update_usage(state.usage, read_weights, write, c.gamma)
            least_used = addressing.least_used(usage, R)

        new_state = MANNState(hidden, cell, read.flatten(1), read_weights, usage, least_used, memory)
        trace = None
        if with_trace:
            trace = {
                "read_weights": read_weights, "usage": usage, "least_used": least_used, "write_weights": write,
                "memory": memory, "write_gate": torch.sigmoid(self.gate),
            }
        return new_state, trace


# Model name -> (class, config class); the name is what checkpoints and the command line use.
MODELS = {"flmn": (FLMN, FLMNConfig), "mann": (MANN, MANNConfig)}


def build_model(name, **config):
    """Build a model by name from plain config values, e.g. build_model("mann", read_heads=4)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    model_class, config_class = MODELS[name]
    return model_class(config_class(**config))


def model_name(model):
    """The registry name of a model instance ("flmn" or "mann")."""
    return next(name for name, (cls, _) in MODELS.items() if type(model) is cls)
