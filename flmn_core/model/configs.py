"""The models' settings: one frozen dataclass per model, the fields they share in one base.

A config is stored in every checkpoint as a plain dict (`dataclasses.asdict`), so that
`torch.load(path, weights_only=True)` reads it back and `FLMNConfig(**values)` rebuilds exactly what was
trained. Each field carries its help text, from which `flmn train --help` is built. The defaults are the
papers'; every variant beyond them is a field whose default leaves it off.
"""

import dataclasses
import math
from dataclasses import dataclass

IMAGE_SIZE = 20  # the papers' input: images downscaled to 20 x 20 (flmn_core.data.normalise produces them)
# What the controller sees of an image (flmn_core.model.networks builds each): name -> what it is.
ENCODERS = {"pixels": "the image's 400 pixels, as the papers",
            "conv": "variant: the features of a small convolutional network"}

# Upper bounds of the sizes a config may ask for: far above any sensible model, far below one that would
# make a loaded checkpoint allocate gigabytes.
LIMITS = dict(classes=100, controller_size=4096, memory_rows=4096, word_size=1024, label_word_size=1024,
              read_heads=16)


def setting(default, help):
    """A config field with its help text (shown by `flmn train --help`)."""
    return dataclasses.field(default=default, metadata={"help": help})


def check_fields(config, skip=()):
    """Refuse a config whose values have the wrong type or size, with a message naming the field."""
    for field in dataclasses.fields(config):
        if field.name in skip:
            continue
        value, kind = getattr(config, field.name), field.type
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f"{field.name} must be true or false, not {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{field.name} must be a whole number, not {value!r}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{field.name} must be a number, not {value!r}")
        if kind is str and not isinstance(value, str):
            raise ValueError(f"{field.name} must be text, not {value!r}")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{field.name} must be a finite number, not {value!r}")
        if field.name in LIMITS and not 1 <= value <= LIMITS[field.name]:
            raise ValueError(f"{field.name} must be between 1 and {LIMITS[field.name]}, not {value}")


@dataclass(frozen=True)
class ModelConfig:
    """What FLMN and MANN share: the controller, the memory's size and the addressing variants."""

    classes: int = setting(5, "L: the labels the model tells apart (the one-hot input y_{t-1} and the classifier's "
                              "outputs); an episode has at most L classes")
    controller_size: int = setting(200, "H: LSTM units")
    memory_rows: int = setting(128, "N: memory rows (FLMN: in all, N/2 feature and N/2 label rows)")
    word_size: int = setting(40, "M: width of a (feature-)memory row")
    gamma: float = setting(0.95, "usage decay of Eq. (4)")
    key_strength: bool = setting(False, "variant: a learned strength beta_t >= 1 sharpens the read softmax")
    read_first: bool = setting(False, "variant: address the memory (FLMN: the feature memory) before this step's "
                                      "write")
    mask_empty_rows: bool = setting(False, "variant: rows that hold nothing take no read weight")
    null_row: bool = setting(False, "variant: a read may land on nothing: an always-empty row whose similarity "
                                    "is a learned threshold")
    encoder: str = setting("pixels", "what the controller sees of an image: "
                                     + "; ".join(f"'{name}': {what}" for name, what in ENCODERS.items()))

    def __post_init__(self):
        check_fields(self)
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(map(repr, ENCODERS))}, not {self.encoder!r}")
        if self.classes < 2:
            raise ValueError(f"classes must be at least 2 (one class is no classification), not {self.classes}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma (the usage decay) must be between 0 and 1, not {self.gamma}")


@dataclass(frozen=True)
class FLMNConfig(ModelConfig):
    """FLMN's settings; the defaults are the paper's."""

    label_word_size: int = setting(40, "width of a label-memory row (the paper: N/2 x M for both memories)")
    clear_label_rows: bool = setting(True, "Eq. (7) also clears the label row of a cleared feature row")

    def __post_init__(self):
        super().__post_init__()
        if self.memory_rows % 2 or self.memory_rows < 2:
            raise ValueError(f"memory_rows must be even (N/2 feature + N/2 label rows), got {self.memory_rows}")


@dataclass(frozen=True)
class MANNConfig(ModelConfig):
    """MANN's settings; the defaults are Santoro et al.'s with one read head (the FLMN paper's baseline)."""

    read_heads: int = setting(1, "R: 1 as the FLMN paper's baseline, 4 as Santoro et al.")
    write_content: str = setting("key", "'key': write k_t, as the paper; 'add': a separate add vector a_t")

    def __post_init__(self):
        super().__post_init__()
        if self.write_content not in ("key", "add"):
            raise ValueError(f"write_content must be 'key' or 'add', not {self.write_content!r}")
        if self.read_heads > self.memory_rows:
            raise ValueError(f"read_heads ({self.read_heads}) cannot exceed memory_rows ({self.memory_rows})")
