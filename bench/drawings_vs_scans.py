"""How much worse a model recognises drawings made on the app's canvas than the scans of the same drawings.

    python -m bench.drawings_vs_scans                                  # the default FLMN, 2,000 episodes
    python -m bench.drawings_vs_scans --checkpoint checkpoints/flmn-exp1.pt --pens 6 12 20 --scales 1 0.5

Omniglot's stroke files (omniglot-strokes/ under FLMN_DATA_DIR) hold the pen trajectories from which 242
of its background characters were drawn by 20 people; its image zip holds the scans of the very same
drawings. Each drawing is rendered as the Teach page's canvas renders it (flmn_core.data.strokes.render_canvas:
its 280 px and a pen of --pens pixels; --scales draws it that much smaller or larger about the frame's
centre, as a person who draws small would). Every pool is run through the same episodes (one seed: the
same characters, drawers and order):
- scans: the scans, preprocessed as in training (flmn_core.preprocess);
- canvas, training's preprocessing: the renderings through preprocess alone (the app's path until now);
- canvas, the app: the renderings through the app's path (flmn_core.interactive.uploads: image_from_canvas, prepare).
Prints per-instance accuracy with 95% confidence intervals and each pool's gap to the scans at the 2nd
instance. The characters belong to Omniglot's background set, which the shipped models were trained on:
absolute accuracies run above Table 1's held-out ones; the gap between pools is the figure to read.
"""

import argparse
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.arguments import checkpoint_file, existing_folder, positive_float
from flmn_core import load_model, preprocess
from flmn_core.data import strokes
from flmn_core.data.normalise import OMNIGLOT_SIZE
from flmn_core.data.strokes import DEFAULT_PEN
from flmn_core.interactive.uploads import image_from_canvas, prepare
from flmn_core.model import zoo
from flmn_core.results import markdown
from flmn_core.training.evaluate import evaluate_model, positive_int, seed_int

SHOWN = (1, 2, 3, 5, 10)  # instances printed
DRAWERS = 20  # drawings of each character, in both Omniglot's scans and its stroke files


def parse_args(argv=None):
    default = zoo.default("flmn").name  # the sidebar's default FLMN
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=checkpoint_file, default=str(zoo.weights_path(default)),
                        help="the model to measure")
    parser.add_argument("--episodes", type=positive_int, default=2000,
                        help="episodes per pool (5 classes x 10 drawings)")
    parser.add_argument("--seed", type=seed_int, default=0, help="the episodes' seed, the same for every pool")
    parser.add_argument("--pens", type=positive_float, nargs="+", default=[DEFAULT_PEN], help="canvas pen widths, px")
    parser.add_argument("--scales", type=positive_float, nargs="+", default=[1.0], help="drawing sizes, 1 = as drawn")
    parser.add_argument("--data-dir", type=existing_folder, default=os.environ.get("FLMN_DATA_DIR", "../shared/data"),
                        help="folder with omniglot/images_background.zip and omniglot-strokes/ ($FLMN_DATA_DIR)")
    return parser.parse_args(argv)


def read_pools(data_dir):
    """-> (drawings {key: strokes}, scans [characters, 20, 20, 20]) in the same order."""
    drawings = strokes.read_drawings(strokes.stroke_zips(data_dir))
    with zipfile.ZipFile(Path(data_dir, "omniglot", "images_background.zip")) as archive:
        scans = [preprocess(Image.open(io.BytesIO(archive.read(strokes.scan_member(key))))) for key in drawings]
    return drawings, torch.stack(scans).reshape(-1, DRAWERS, 20, 20)


def scaled(drawing, factor):
    """The strokes drawn `factor` times as large about the frame's centre."""
    centre = OMNIGLOT_SIZE / 2
    return [np.concatenate([(s[:, :2] - centre) * factor + centre, s[:, 2:]], axis=1) for s in drawing]


def canvas_pools(drawings, pen, scale):
    """The drawings rendered on the canvas -> (through preprocess alone, through the app's prepare), each
    [characters, 20, 20, 20]."""
    trained, app = [], []
    for drawing in drawings.values():
        rgba = strokes.render_canvas(scaled(drawing, scale) if scale != 1 else drawing, pen=pen)
        trained.append(preprocess(rgba))
        app.append(prepare(image_from_canvas(rgba)))
    return (torch.stack(pool).reshape(-1, DRAWERS, 20, 20) for pool in (trained, app))


def row(name, result, scans=None):
    """One line of the table: accuracy (%) at the SHOWN instances, the 2nd's CI, the gap to the scans."""
    cells = " ".join(f"{100 * result['accuracy'][k - 1]:5.1f}" for k in SHOWN)
    gap = "" if scans is None else f"   gap at 2nd: {100 * (scans['accuracy'][1] - result['accuracy'][1]):+5.1f}"
    return f"{name:44s} {cells}   ±{100 * result['ci95'][1]:.1f}{gap}"


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    started = time.perf_counter()
    drawings, scans = read_pools(args.data_dir)
    print(f"checkpoint {args.checkpoint}; {args.episodes:,} episodes of 5 classes x 10 drawings (seed {args.seed}) "
          f"from {scans.shape[0]} characters x {DRAWERS} drawers of Omniglot's stroke files")
    print(f"{'pool':44s} " + " ".join(f"{markdown.ordinal(k):>5s}" for k in SHOWN) + "   CI at 2nd")
    reference = evaluate_model(model, scans, args.episodes, args.seed)
    print(row("scans, training's preprocessing", reference), flush=True)
    for scale in args.scales:
        for pen in args.pens:
            trained, app = canvas_pools(drawings, pen, scale)
            where = f"canvas pen {pen:g}" + (f", drawn at {scale:g}x" if scale != 1 else "")
            print(row(f"{where}, training's preprocessing", evaluate_model(model, trained, args.episodes, args.seed),
                      reference))
            print(row(f"{where}, the app (images.prepare)", evaluate_model(model, app, args.episodes, args.seed),
                      reference), flush=True)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
