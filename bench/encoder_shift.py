"""How much a drawing moved by a few pixels still looks like itself, to the controller's input.

    python -m bench.encoder_shift                 # flmn-conv's encoder against the raw pixels, 2-pixel shift
    python -m bench.encoder_shift --shift 1 --characters 1000

For one drawing of each of the first --characters Omniglot characters (20 x 20, as the models see them), prints
the mean cosine similarity between the drawing and itself moved by --shift pixels right and down, and between
the drawing and the next character's drawing, for the raw pixels (what `--encoder pixels` feeds the LSTM) and
for the features of a checkpoint's convolutional encoder (`--encoder conv`). A key is made from these
inputs: the closer a moved drawing stays to itself, and the further from other characters, the easier the
read's match.
"""

import argparse
import os

import numpy as np
import torch

from bench.arguments import checkpoint_file, existing_folder, whole_number
from flmn_core import load_model
from flmn_core.data.sources import load_omniglot
from flmn_core.model import zoo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=checkpoint_file, default=str(zoo.weights_path("flmn-conv")),
                        help="a model with encoder conv")
    parser.add_argument("--shift", type=whole_number(-19, 19), default=2, help="pixels right and down")
    parser.add_argument("--characters", type=whole_number(2, 1623), default=300, help="characters, one drawing each")
    parser.add_argument("--data-dir", type=existing_folder, default=os.environ.get("FLMN_DATA_DIR", "../shared/data"))
    return parser.parse_args(argv)


def mean_cosine(a, b):
    """Mean cosine similarity of matching rows of two [n, ...] tensors."""
    return torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1)).mean().item()


def similarities(inputs, moved):
    """(drawing vs its moved copy, drawing vs the next character's drawing) for [n, ...] inputs."""
    return mean_cosine(inputs, moved), mean_cosine(inputs, inputs.roll(1, 0))


def main(argv=None):
    args = parse_args(argv)
    model = load_model(args.checkpoint).eval()
    if model.encoder is None:
        raise SystemExit(f"{args.checkpoint} has no convolutional encoder (its encoder is {model.config.encoder!r})")
    images = torch.as_tensor(np.asarray(load_omniglot(args.data_dir).images[: args.characters, 0]), dtype=torch.float32)
    moved = images.roll((args.shift, args.shift), (1, 2))
    with torch.no_grad():
        features, moved_features = model.encoder(images[:, None]), model.encoder(moved[:, None])
    print(f"{len(images)} characters, one drawing each, moved {args.shift} pixels right and down; mean cosine")
    encoder = f"encoder of {os.path.basename(args.checkpoint)}"
    for name, (same, other) in (("pixels", similarities(images, moved)),
                                (encoder, similarities(features, moved_features))):
        print(f"{name:32s} the drawing moved: {same:.3f}   another character: {other:.3f}")


if __name__ == "__main__":
    main()
