"""flmn_core: Feature-Label Memory Network (Mureja et al. 2017) and MANN (Santoro et al. 2016) in PyTorch.

    >>> import flmn_core
    >>> model = flmn_core.load_model("checkpoints/flmn-exp1.pt")
    >>> omniglot = flmn_core.load_omniglot()              # FLMN_DATA_DIR or --data-dir
    >>> batch = flmn_core.sample_episodes(omniglot.images, 16, torch.Generator().manual_seed(0),
    ...                                   characters=flmn_core.split_indices("test"))
    >>> logits = model(batch.images, batch.prev_labels)  # [16, 50, 5]
"""

from flmn_core.data.episodes import Episodes, sample_episodes
from flmn_core.data.normalise import preprocess
from flmn_core.data.sources import DataError, load_mini_mnist, load_omniglot, split_indices
from flmn_core.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from flmn_core.model.configs import IMAGE_SIZE, FLMNConfig, MANNConfig
from flmn_core.model.networks import FLMN, MANN, build_model

__all__ = [
    "CheckpointError", "DataError", "Episodes", "FLMN", "FLMNConfig", "IMAGE_SIZE", "MANN", "MANNConfig",
    "build_model", "load_checkpoint", "load_mini_mnist", "load_model", "load_omniglot", "preprocess",
    "sample_episodes", "save_checkpoint", "split_indices",
]
