"""TrainConfig: everything that decides what a training run computes, in one frozen dataclass.

A run saves it in its folder (config.json) and in every checkpoint, so that

    flmn train --config checkpoints/flmn-exp1.pt --out runs/again

trains the same model again. The command line of `flmn_core.training.train` is built from these fields (and from
the model configs' fields), so a setting is declared once, with its default and its help text, here or in
`flmn_core.model.networks`. What only concerns the process (where to write, threads, compilation) is not here.
"""

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from flmn_core.data.normalise import OMNIGLOT_SIZE
from flmn_core.data.sources import SPLIT_SCHEMES
from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.model.configs import FLMNConfig, MANNConfig, check_fields, setting
from flmn_core.model.networks import MODELS, model_name_of_config

# The papers' budget: 100,000 optimizer steps of 16 episodes (Santoro et al.'s "100,000 episodes" counts
# batches: their code and plots count iterations of a batch of 16).
PAPER_EPISODES = 100_000 * 16
MAX_SAMPLES = 20  # an Omniglot character has 20 drawings
MAX_SEED = 2**32 - 1  # seeds are 32-bit: a process's episode seed (train.episode_stream_seed) stays within torch's
MAX_CONFIG_BYTES = 1 << 20  # a config.json takes about 1 KB; reading more than this is reading something else


@dataclass(frozen=True)
class TrainConfig:
    """A training run's settings; the defaults are the papers' (FLMN, Experiment I, Adam 1e-3, batch 16)."""

    model: FLMNConfig | MANNConfig = dataclasses.field(default_factory=FLMNConfig)  # the model and its config
    experiment: str = setting("I", "'I': the images as they are; 'II': random rotation and translation")
    max_rotation: float = setting(11.25, "experiment II: largest rotation, in degrees (the paper's pi/16)")
    max_shift: float = setting(10.0, "experiment II: largest shift, in pixels of the 105 x 105 frame")
    split: str = setting("alphabets", "'alphabets': the paper's split, test characters of alphabets never trained "
                                      "on; 'random': 414 test characters drawn from all 50 alphabets")
    max_classes: int = setting(0, "C: most classes in a training episode (0: the model's label count L, as the "
                                  "papers; fewer: each episode uses C of the L labels)")
    min_classes: int = setting(0, "fewest classes in a training episode: each batch draws its C uniformly from "
                                  "here to --max-classes (0: always --max-classes)")
    softmax_twice: bool = setting(False, "the authors' 2017 code: the loss takes the model's probabilities as "
                                         "logits, a second softmax")
    rotate_classes: bool = setting(False, "also draw characters turned by 90/180/270 degrees as new classes")
    widen_strokes: float = setting(0.0, "variant (with experiment II): widen each drawing's strokes by U[0, this] "
                                        "pixels of the 105 x 105 frame, for other pens (MNIST's are 5-12 px)")
    samples: int = setting(10, "drawings of each class in an episode (T = classes x samples)")
    batch_size: int = setting(16, "episodes per optimizer step (split over the processes when data-parallel)")
    optimizer: str = setting("adam", "'adam' or 'rmsprop' (momentum 0.9)")
    lr: float = setting(1e-3, "learning rate")
    lr_schedule: str = setting("constant", "'constant', or 'cosine': decays the rate to 1/20 over the run")
    clip: float = setting(10.0, "gradient-norm clipping")
    episodes: int = setting(PAPER_EPISODES, "training episodes in all (the papers': 100,000 steps of 16)")
    seed: int = setting(0, "seed of the weights and of the training episodes")
    retrieval_loss: float = setting(0.0, "variant: weight of a loss on read weight off the rows of the class")
    log_every: int = setting(2000, "episodes between training log lines")
    val_every: int = setting(20_000, "episodes between validations (which choose best.pt)")
    val_episodes: int = setting(2000, "episodes per validation")

    def __post_init__(self):
        check_fields(self, skip=("model",))
        if not isinstance(self.model, (FLMNConfig, MANNConfig)):
            raise ValueError(f"model must be an FLMNConfig or a MANNConfig, not {self.model!r}")
        choices = dict(experiment=("I", "II"), optimizer=("adam", "rmsprop"), lr_schedule=("constant", "cosine"),
                       split=SPLIT_SCHEMES)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        for name in ("batch_size", "episodes", "log_every", "val_every", "val_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, not {self.seed}")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise ValueError(f"samples must be between 1 and {MAX_SAMPLES}, not {self.samples}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, not {self.lr}")
        if not self.clip > 0:
            raise ValueError(f"clip must be positive, not {self.clip}")
        if not 0 <= self.widen_strokes < math.inf:
            raise ValueError(f"widen_strokes must be 0 or positive, not {self.widen_strokes}")
        if self.widen_strokes and self.experiment != "II":
            raise ValueError("widen_strokes needs experiment II, whose augmentation path transforms the "
                             "full-size images")
        if not 0 <= self.retrieval_loss < math.inf:
            raise ValueError(f"retrieval_loss must be 0 or positive, not {self.retrieval_loss}")
        if not (0 <= self.max_rotation <= 180 and 0 <= self.max_shift <= OMNIGLOT_SIZE):
            raise ValueError(f"max_rotation must be 0 to 180 degrees and max_shift 0 to {OMNIGLOT_SIZE} pixels, "
                             f"not {self.max_rotation} and {self.max_shift}")
        labels = self.model.classes
        if self.max_classes and not 2 <= self.max_classes <= labels:
            raise ValueError(f"max_classes must be 0 (all {labels} labels) or 2 to {labels}, not {self.max_classes}")
        if self.min_classes and not 2 <= self.min_classes <= self.classes_range[1]:
            raise ValueError(f"min_classes must be 0 or 2 to max_classes ({self.classes_range[1]}), "
                             f"not {self.min_classes}")
    @property
    def classes_range(self):
        """(fewest, most) classes C of a training episode; each batch draws its C uniformly in between."""
        most = self.max_classes or self.model.classes
        return self.min_classes or most, most

    @property
    def model_name(self):
        """"flmn" or "mann"."""
        return model_name_of_config(self.model)

    def to_dict(self):
        """Plain values (JSON and torch.load(weights_only=True) safe); `from_dict` reverses it."""
        values = dataclasses.asdict(self)
        values["model"] = {"name": self.model_name, "config": values["model"]}
        return values

    @classmethod
    def from_dict(cls, values):
        """A TrainConfig from `to_dict`'s output; unknown or mistyped settings raise ValueError."""
        if not isinstance(values, dict) or not isinstance(values.get("model"), dict):
            raise ValueError("a training config is a dict with a 'model' entry {name, config}")
        values = dict(values)
        model = values.pop("model")
        if model.get("name") not in MODELS or not isinstance(model.get("config"), dict):
            raise ValueError(f"unknown model {model.get('name')!r}; expected one of {sorted(MODELS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        try:
            return cls(model=MODELS[model["name"]][1](**model["config"]), **values)
        except TypeError as error:  # an unknown model setting
            raise ValueError(f"{model['name']} model: {error}") from error

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2) + "\n"


def learning_rate(config, episode):
    """The learning rate at an episode count."""
    if config.lr_schedule == "constant":
        return config.lr
    progress = min(episode / config.episodes, 1.0)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def read_config_file(path):
    """The TrainConfig of a run's config.json or of a checkpoint (.pt) -> TrainConfig; ValueError if none."""
    path = Path(path)
    if path.suffix == ".pt":
        values = load_checkpoint(path).get("train_config")
        if values is None:
            raise ValueError(f"{path} holds no training config (it was written before configs were saved)")
        return TrainConfig.from_dict(values)
    if not path.is_file():
        raise ValueError(f"{path}: not a file" if path.exists() else f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ValueError(f"it is larger than {MAX_CONFIG_BYTES:,} bytes, which no config.json is")
        values = json.loads(text)
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested thousands deep
        raise ValueError(f"{path}: cannot read a training config ({error})") from error
    return TrainConfig.from_dict(values)


# Named recipes (`train --recipe NAME`): a documented TrainConfig to start from; options given beside it win.
RECIPES = {
    # The authors' released code (Mureja et al., TensorFlow, 2017), read for its facts: batch 5 for 100,000
    # iterations; the loss's second softmax; training rotations of +-pi/16 *degrees* (the bound in radians
    # passed to a function of degrees) and no shift (the shifted image is computed, the unshifted one used);
    # the label memory never cleared. Everything else of its cell is this project's FLMN as the paper writes it
    # (read after the write, no key strength, usage decay 0.95, 64 + 64 rows of 40, Adam 1e-3). Its test
    # episodes are rotated by up to 10 degrees: `evaluate --rotate 10`.
    "authors-2017": TrainConfig(model=FLMNConfig(clear_label_rows=False), experiment="II",
                                max_rotation=math.pi / 16, max_shift=0.0,  # pi/16 read as degrees
                                batch_size=5, episodes=500_000, softmax_twice=True),
}
