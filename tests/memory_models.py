"""A hand-made FLMN that retrieves, for tests of the memory view and of memory surgery.

The shipped checkpoints read nearly uniformly (issue 14), so "wipe the row the model retrieves from and
its prediction changes" cannot be shown with them. This FLMN's weights are set by hand so that it does
exactly what the paper's Fig. 1b draws: its key and its feature are the image itself, a large key
strength puts the read on the stored drawing most like the new one, the label memory gives back that
row's label, and the classifier outputs the label read.
"""

import torch

from flmn_core import FLMN, FLMNConfig
from flmn_core.data.glyphs import sample_glyph_pool

PIXELS = 20 * 20
OPEN, SHUT = 30.0, -30.0  # gate pre-activations that saturate a sigmoid


@torch.no_grad()
def retrieving_flmn(classes=3, feature_rows=8):
    """FLMN(classes, feature_rows) with hand-set weights: it reads before writing (read_first), writes to
    the least-used row only (write gate sigma(alpha) ~ 0), and keeps nothing in its LSTM (forget gate
    shut), so all it knows of earlier steps comes from its memory."""
    H = PIXELS + classes  # the controller copies the image and the previous label
    model = FLMN(FLMNConfig(classes=classes, controller_size=H, memory_rows=2 * feature_rows, word_size=PIXELS,
                            label_word_size=classes, key_strength=True, read_first=True))
    for parameter in model.parameters():
        parameter.zero_()
    # LSTM gates (input, forget, cell, output) on [x_t, y_{t-1}]: h_t = tanh(tanh(2 [x_t, y_{t-1}])).
    model.input_gates.bias[:H] = OPEN
    model.input_gates.bias[H : 2 * H] = SHUT
    model.input_gates.bias[3 * H :] = OPEN
    model.input_gates.weight[2 * H : 3 * H] = 2.0 * torch.eye(H)
    # Interface: key = feature = the image part of h_t; label add = the label part; strength beta = 51.
    model.interface.weight[:PIXELS, :PIXELS] = torch.eye(PIXELS)
    model.interface.weight[PIXELS : 2 * PIXELS, :PIXELS] = torch.eye(PIXELS)
    model.interface.weight[2 * PIXELS : 2 * PIXELS + classes, PIXELS:] = 4.0 * torch.eye(classes)
    model.interface.bias[-1] = 50.0
    model.gate.fill_(SHUT)
    model.classifier.weight[:, H:] = 10.0 * torch.eye(classes)  # logits = 10 x the label read
    return model.eval()


def distinct_drawings(characters, seed=0):
    """One drawing each of `characters` generated characters: [characters, 20, 20]."""
    return sample_glyph_pool(characters, 1, seed)[:, 0]
