"""MANN (Santoro et al. 2016) and FLMN (Mureja et al. 2017): an LSTM controller with an external memory.

Both models read an episode one step at a time. At step t the controller sees the image x_t, the one-hot
label of the previous step y_{t-1} and the previous read vector r_{t-1}; its interface layer emits a key and
add vectors; the memory is written and read with the equations of `flmn_core.model.addressing`; the classifier
sees the controller output h_t and the read vector r_t.

Shapes: B batch, T steps, C classes, H controller units, R heads, N rows, W word size.

    model(images [B, T, 20, 20], prev_labels [B, T, C]) -> logits [B, T, C]
    model(images, prev_labels, record=True) -> (logits, Recording): also every step's addressing weights
    model.step(image [B, 20, 20], prev_label [B, C], state=None) -> (logits [B, C], state, trace)

The state (a named tuple) is what the next step needs; the trace (another named tuple) is what the step
computed on the way and the state does not keep: the key, the add vectors, the similarities, the rows
cleared. Together they are everything the app draws.
"""

from dataclasses import asdict
from typing import NamedTuple

import torch
from torch import nn

from flmn_core.model import addressing
from flmn_core.model.configs import IMAGE_SIZE, FLMNConfig, MANNConfig


def conv_block(inputs, outputs, stride=1, pool=False):
    """3 x 3 convolution, GroupNorm, ReLU (then 2 x 2 max-pooling): the norm is per image, so a step of one
    image in the app computes exactly what a batch of training episodes does."""
    layers = [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1), nn.GroupNorm(4, outputs), nn.ReLU()]
    return layers + [nn.MaxPool2d(2)] if pool else layers


CONV_FEATURES = 256  # the 'conv' encoder's output: 64 channels x 2 x 2


def conv_encoder():
    """The 'conv' encoder: [n, 1, 20, 20] images -> [n, CONV_FEATURES] features. Three convolution blocks (the
    first with stride 2: the cheapest way to 10 x 10 on a CPU) and two max-poolings, so a character's features
    change little when it moves by a pixel or two, which the pixels fed straight to the LSTM cannot give.
    The norms keep the features of different characters apart: without them they are nearly equal, and
    training stays at chance (docs/models.md)."""
    return nn.Sequential(
        *conv_block(1, 16, stride=2),  # 10 x 10
        *conv_block(16, 32, pool=True),  # 5 x 5
        *conv_block(32, 64, pool=True),  # 2 x 2
        nn.Flatten(), nn.LayerNorm(CONV_FEATURES))


# What the controller sees of an image: the encoder's name -> (factory or None for the raw pixels, features).
ENCODER_NETWORKS = {"pixels": (None, IMAGE_SIZE * IMAGE_SIZE), "conv": (conv_encoder, CONV_FEATURES)}


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


class FLMNTrace(NamedTuple):
    """What an FLMN step computed and its state does not keep (batch first, one head)."""

    key: torch.Tensor  # [B, W] k_t
    feature_add: torch.Tensor  # [B, W] a^f_t
    label_add: torch.Tensor  # [B, W_label] a^l_t
    strength: torch.Tensor | None  # [B] the key strength beta_t; None: the paper's unscaled softmax (beta 1)
    similarity: torch.Tensor  # [B, N/2] K(k_t, M^f(i)) of Eq. (1)
    readable: torch.Tensor | None  # [B, N/2] bool, the rows that may take read weight; None: every row
    cleared: torch.Tensor  # [B, N/2] the rows Eq. (7) cleared this step (w^lu_{t-1})
    label_write_weights: torch.Tensor  # [B, N/2] w^wl_t = w^wf_{t-1} (Eq. 9)
    write_gate: torch.Tensor  # [1] sigma(alpha) of Eq. (6)


class MANNState(NamedTuple):
    """MANN's recurrent state after a step."""

    hidden: torch.Tensor  # [B, H]
    cell: torch.Tensor  # [B, H]
    read: torch.Tensor  # [B, R * W] the R read vectors, concatenated
    read_weights: torch.Tensor  # [B, R, N]
    usage: torch.Tensor  # [B, N]
    least_used: torch.Tensor  # [B, R, N]
    memory: torch.Tensor  # [B, N, W]


class MANNTrace(NamedTuple):
    """What a MANN step computed and its state does not keep (batch first, R heads)."""

    keys: torch.Tensor  # [B, R, W] k_t
    written: torch.Tensor  # [B, R, W] what each head wrote: k_t, or a_t when write_content="add"
    strength: torch.Tensor | None  # [B, R] beta_t; None: the paper's unscaled softmax (beta 1)
    similarity: torch.Tensor  # [B, R, N] Eq. (1)
    readable: torch.Tensor | None  # [B, N] bool, the rows that may take read weight; None: every row
    cleared: torch.Tensor  # [B, N] the rows Eq. (7) cleared this step
    write_weights: torch.Tensor  # [B, R, N] w^w_t of Eq. (6)
    write_gate: torch.Tensor  # [R] sigma(alpha), one per head


class Recording(NamedTuple):
    """The addressing of every step of a batch of episodes (`model(..., record=True)`), to measure retrieval.

    read_weights: [B, T, R, N].  write_weights: [B, T, R, N] (FLMN: its feature memory).
    cleared: [B, T, N], the rows Eq. (7) cleared at each step, before that step's write.
    """

    read_weights: torch.Tensor
    write_weights: torch.Tensor
    cleared: torch.Tensor


class MemoryNetwork(nn.Module):
    """What MANN and FLMN share: the LSTM controller, the classifier and the loop over steps.

    Subclasses define `interface_size`, `initial_state` and
    `memory_step(hidden, cell, state) -> (state, trace)`.
    The image and label part of the controller's input is projected for all T steps in one matmul
    before the loop, since it does not depend on the recurrence.
    """

    def __init__(self, config, read_size):
        super().__init__()
        self.config = config
        hidden = config.controller_size
        make_encoder, features = ENCODER_NETWORKS[config.encoder]
        self.encoder = make_encoder() if make_encoder else None
        self.input_gates = nn.Linear(features + config.classes, 4 * hidden)
        self.recurrent_gates = nn.Linear(read_size + hidden, 4 * hidden, bias=False)
        # The interface layer: h_t -> keys, add vectors (and key strengths), as in the NTM's "heads".
        self.interface = nn.Linear(hidden, self.interface_size())
        self.classifier = nn.Linear(hidden + read_size, config.classes)
        # The null row's similarity (a threshold a stored row must beat to take the read), per head.
        self.null_similarity = nn.Parameter(torch.zeros(self.heads)) if config.null_row else None
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
        if self.encoder is None:
            features = images.flatten(2)
        else:  # all B x T images in one batch through the encoder
            B, T = images.shape[:2]
            features = self.encoder(images.reshape(B * T, 1, IMAGE_SIZE, IMAGE_SIZE)).reshape(B, T, -1)
        return self.input_gates(torch.cat([features, prev_labels], dim=2))

    def forward(self, images, prev_labels, record=False):
        """Run whole episodes. images: [B, T, 20, 20] (ink 1), prev_labels: [B, T, C] -> logits [B, T, C];
        with record=True -> (logits, Recording), every step's addressing weights too."""
        gates_in = self.project_inputs(images, prev_labels)  # [B, T, 4H]
        # in the weights' precision, also under autocast: the memories add up 50 steps of writes
        state = self.initial_state(images.shape[0], dtype=self.gate.dtype)
        hiddens, reads, steps = [], [], []
        for gates_t in gates_in.unbind(1):  # unbind, not gates_in[:, t]: its backward is one stack, not T fills
            state, trace = self.advance(gates_t, state)
            hiddens.append(state.hidden)
            reads.append(state.read)
            if record:
                steps.append(self.addressing_of(state, trace))
        # The classifier runs once on all T steps: one large matmul instead of T small ones.
        logits = self.classifier(torch.cat([torch.stack(hiddens, dim=1), torch.stack(reads, dim=1)], dim=2))
        if not record:
            return logits
        return logits, Recording(*(torch.stack(parts, dim=1) for parts in zip(*steps)))

    def step(self, image, prev_label, state=None):
        """One step, for interactive use. image: [B, 20, 20], prev_label: [B, C], state from the last
        step or None to start an episode -> (logits [B, C], state, trace)."""
        if state is None:
            state = self.initial_state(image.shape[0], dtype=image.dtype)
        gates_in = self.project_inputs(image.unsqueeze(1), prev_label.unsqueeze(1))[:, 0]
        state, trace = self.advance(gates_in, state)
        return self.classifier(torch.cat([state.hidden, state.read], dim=1)), state, trace

    def advance(self, gates_in, state):
        """Controller then memory for one step -> (state, trace)."""
        hidden, cell = self.lstm_cell(gates_in, state.hidden, state.cell, state.read)
        return self.memory_step(hidden, cell, state)

    def read_weights(self, keys, memory, raw_strength):
        """Eqs. (1)-(2) with the variants: keys [B, R, W], memory [B, N, W], raw_strength [B, R] or None
        -> (read_weights [B, R, N], similarity [B, R, N], strength [B, R] or None, readable [B, N] or None)."""
        similarity = addressing.cosine_similarity(keys, memory)
        strength = None if raw_strength is None else 1.0 + nn.functional.softplus(raw_strength)  # beta >= 1
        readable = addressing.holds_something(memory) if self.config.mask_empty_rows else None
        strength_ = None if strength is None else strength.unsqueeze(-1)
        if self.null_similarity is None:
            weights = addressing.read_weights(similarity, strength_, readable)
        else:
            weights = addressing.read_weights_with_null(similarity, self.null_similarity, strength_, readable)
        return weights, similarity, strength, readable

    def config_dict(self):
        """The config as a plain dict, as stored in checkpoints."""
        return asdict(self.config)


class FLMN(MemoryNetwork):
    """Feature-Label Memory Network (Mureja, Park, Yoo 2017).

    Two memories of N/2 rows: the feature memory M^f stores what the controller writes about an image;
    the label memory M^l stores, in the same row, the label that arrives one step later. Per step t:

        k_t, a^f_t, a^l_t = tanh(interface(h_t))
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
    - Reads use M_t, after this step's writes, as the equations index them; read_first=True addresses the
      feature memory before this step's feature write (the label memory is still read after its write,
      which brings in the label of x_{t-1}), so the row holding x_t itself, whose label is not known yet,
      takes no read weight.
    - The classifier sees [h_t, r_t], as in MANN; the key, add vectors and gate alpha are a tanh layer on
      h_t and one learned scalar.
    Variants beyond the paper: key_strength (the NTM's beta), mask_empty_rows (reads only rows that hold
    something; an empty memory reads zeros), null_row (a read may land on nothing: what it takes from the
    null row reads zeros, so a new class reads little and a known one its row).
    """

    heads = 1

    def __init__(self, config=FLMNConfig()):
        super().__init__(config, read_size=config.label_word_size)
        self.rows = config.memory_rows // 2
        self.gate = nn.Parameter(torch.zeros(1))  # alpha of Eq. (6), one head

    def interface_size(self):
        c = self.config
        return 2 * c.word_size + c.label_word_size + c.key_strength

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

    def memory_step(self, hidden, cell, state):
        c = self.config
        W, WL = c.word_size, c.label_word_size
        out = self.interface(hidden)
        vectors = torch.tanh(out[:, : 2 * W + WL]).unsqueeze(1)  # [B, 1, 2W + WL]
        key, feature_add, label_add = vectors[..., :W], vectors[..., W : 2 * W], vectors[..., 2 * W :]

        feature_write = addressing.write_weights(self.gate, state.read_weights, state.least_used)
        feature_memory = addressing.clear_rows(state.feature_memory, state.least_used)
        label_memory = state.label_memory
        if c.clear_label_rows:
            label_memory = addressing.clear_rows(label_memory, state.least_used)
        before_write = feature_memory
        feature_memory = addressing.write_memory(feature_memory, feature_write, feature_add)
        label_memory = addressing.write_memory(label_memory, state.feature_write_weights, label_add)

        read_weights, similarity, strength, readable = self.read_weights(
            key, before_write if c.read_first else feature_memory, out[:, 2 * W + WL :] if c.key_strength else None)
        read = addressing.read_memory(read_weights, label_memory)
        with torch.no_grad():  # usage only feeds the hard least-used choice: no gradient flows through it
            usage = addressing.update_usage(state.usage, read_weights, feature_write, c.gamma)
            least_used = addressing.least_used(usage, 1)

        new_state = FLMNState(hidden, cell, read.flatten(1), read_weights, usage, least_used, feature_write,
                              feature_memory, label_memory)
        trace = FLMNTrace(key[:, 0], feature_add[:, 0], label_add[:, 0], None if strength is None else strength[:, 0],
                          similarity[:, 0], readable,
                          state.least_used[:, 0], state.feature_write_weights[:, 0], torch.sigmoid(self.gate))
        return new_state, trace

    @staticmethod
    def addressing_of(state, trace):
        """(read weights [B, 1, N], write weights [B, 1, N], cleared [B, N]) of a step, for a Recording."""
        return state.read_weights, state.feature_write_weights, trace.cleared


class MANN(MemoryNetwork):
    """Memory-Augmented Neural Network with least-recently-used access (Santoro et al. 2016).

    One N x M memory and R read heads. Per step t, for each head h:

        k_t = tanh(interface(h_t))  (and a_t, if write_content="add")
        w^w_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}          Eq. (6)
        clear the rows of w^lu_{t-1}                                            Eq. (7)
        M_t = M_{t-1} + w^w_t k_t                                               Eq. (8)
        w^r_t = softmax(K(k_t, M_t));  r_t = sum_i w^r_t(i) M_t(i)              Eqs. (1)-(3)
        w^u_t = gamma w^u_{t-1} + sum_h (w^r_t + w^w_t)                         Eq. (4)
        w^lu_t: the R rows of smallest usage, one per head                      Eq. (5)

    Santoro et al. write the key k_t and read M_t after the write; public implementations differ, so
    write_content="add" writes a separate add vector and read_first=True addresses and reads M_{t-1}, the
    memory before this step's write (in FLMN, read_first concerns the feature memory only, because its
    label memory must be read after the write that brings in y_{t-1}). Each head has its own gate alpha and
    its own least-used row (see `addressing.least_used`).
    """

    def __init__(self, config=MANNConfig()):
        self.heads = config.read_heads
        super().__init__(config, read_size=config.read_heads * config.word_size)
        self.gate = nn.Parameter(torch.zeros(config.read_heads))  # alpha of Eq. (6), one per head

    def interface_size(self):
        c = self.config
        R, W = c.read_heads, c.word_size
        return R * W + (R * W if c.write_content == "add" else 0) + (R if c.key_strength else 0)

    def initial_state(self, batch_size, dtype=torch.float32):
        c, B, N, R = self.config, batch_size, self.config.memory_rows, self.config.read_heads
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=self.gate.device)  # noqa: E731
        usage = zeros(B, N)
        return MANNState(
            hidden=zeros(B, c.controller_size), cell=zeros(B, c.controller_size), read=zeros(B, R * c.word_size),
            read_weights=zeros(B, R, N), usage=usage, least_used=addressing.least_used(usage, R),
            memory=zeros(B, N, c.word_size),
        )

    def memory_step(self, hidden, cell, state):
        c = self.config
        B, R, W = hidden.shape[0], c.read_heads, c.word_size
        out = self.interface(hidden)
        keys = torch.tanh(out[:, : R * W]).view(B, R, W)
        content = keys
        if c.write_content == "add":
            content = torch.tanh(out[:, R * W : 2 * R * W]).view(B, R, W)

        write = addressing.write_weights(self.gate, state.read_weights, state.least_used)
        memory = addressing.clear_rows(state.memory, state.least_used)
        memory = addressing.write_memory(memory, write, content)
        source = state.memory if c.read_first else memory
        read_weights, similarity, strength, readable = self.read_weights(
            keys, source, out[:, -R:] if c.key_strength else None)
        read = addressing.read_memory(read_weights, source)
        with torch.no_grad():  # usage only feeds the hard least-used choice: no gradient flows through it
            usage = addressing.update_usage(state.usage, read_weights, write, c.gamma)
            least_used = addressing.least_used(usage, R)

        new_state = MANNState(hidden, cell, read.flatten(1), read_weights, usage, least_used, memory)
        trace = MANNTrace(keys, content, strength, similarity, readable, state.least_used.sum(1).clamp(max=1.0),
                          write, torch.sigmoid(self.gate))
        return new_state, trace

    @staticmethod
    def addressing_of(state, trace):
        """(read weights [B, R, N], write weights [B, R, N], cleared [B, N]) of a step, for a Recording."""
        return state.read_weights, trace.write_weights, trace.cleared


# Model name -> (class, config class); the name is what checkpoints and the command line use.
MODELS = {"flmn": (FLMN, FLMNConfig), "mann": (MANN, MANNConfig)}


def load_widening_labels(model, state_dict):
    """Load into `model` (L labels) the weights of the same model with L' <= L labels: every weight as given,
    except that the label columns of the controller's input and the classifier's rows for labels L'..L-1 keep
    the model's own fresh initialisation (they are the last columns and rows). ValueError for any other
    difference."""
    own = model.state_dict()
    if set(state_dict) != set(own):
        raise ValueError(f"the weights are of another model: {sorted(set(state_dict) ^ set(own))[:3]} differ")
    widened = {}
    for key, value in state_dict.items():
        target = own[key]
        grows = key in ("input_gates.weight", "classifier.weight", "classifier.bias")
        if value.shape != target.shape and not (grows and value.dim() == target.dim()
                                                and all(a <= b for a, b in zip(value.shape, target.shape))):
            raise ValueError(f"{key} has shape {list(value.shape)}; this model's is {list(target.shape)}")
        widened[key] = target.clone()
        widened[key][tuple(slice(0, n) for n in value.shape)] = value
    model.load_state_dict(widened)


def build_model(name, **config):
    """Build a model by name from plain config values, e.g. build_model("mann", read_heads=4)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    model_class, config_class = MODELS[name]
    return model_class(config_class(**config))


def model_name(model):
    """The registry name of a model instance ("flmn" or "mann")."""
    return model_name_of_config(model.config)


def model_name_of_config(config):
    """The registry name of a model config ("flmn" or "mann")."""
    return next(name for name, (_, config_class) in MODELS.items() if type(config) is config_class)
