"""The attack surfaces measured again, each in a fresh process: how many hostile or damaged inputs were tried,
how many escaped as anything but the tool's own refusal (unhandled), and the process's peak memory.

    python -m bench.attack_surfaces                  # every surface (about 10 minutes on two busy cores)
    python -m bench.attack_surfaces --only links     # one

Surfaces: checkpoint files damaged byte by byte and cut short (a load must refuse them or give every weight
intact); a weight of a real checkpoint replaced by random views (any shape, stride, offset, dtype, device) of
a small storage; the example episode file damaged byte by byte; random mutations of a real last.pt's
training state; random query strings on the pages that read theirs; random values for every numeric option
of `flmn train` and `flmn evaluate`. docs/guarantees.md tabulates the figures; the tests prove each case
class, this counts them on inputs drawn at random.
"""

import argparse
import contextlib
import io
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FUZZ_VALUES = ["0", "-1", "-0", str(2**70), "1e400", "nan", "inf", "-inf", "x", "", "²", "0x10", "1.5", " 3 "]


def checkpoint_bytes(rng):
    """Byte flips (1 to 3 bytes) and truncations of the default FLMN checkpoint."""
    from flmn_core import CheckpointError, load_checkpoint
    from flmn_core.model import zoo

    path = zoo.weights_path(zoo.default("flmn").name)
    content, original = path.read_bytes(), load_checkpoint(path)["state_dict"]
    counts = {"tried": 0, "unhandled": 0, "refused": 0, "loaded intact": 0, "loaded altered": 0}
    with tempfile.TemporaryDirectory() as folder:
        damaged = Path(folder) / "damaged.pt"
        for trial in range(2300):
            data = bytearray(content[: rng.randrange(1, len(content))] if trial < 300 else content)
            for _ in range(rng.randint(1, 3) if trial >= 300 else 0):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            damaged.write_bytes(data)
            counts["tried"] += 1
            try:
                weights = load_checkpoint(damaged)["state_dict"]
            except CheckpointError:
                counts["refused"] += 1
            except Exception:  # noqa: BLE001 - counting what escapes is the point
                counts["unhandled"] += 1
            else:
                intact = all(torch.equal(weights[key], value) for key, value in original.items())
                counts["loaded intact" if intact else "loaded altered"] += 1
    return counts


def random_view(rng):
    """A random view of a small storage: any shape (up to 50,000 a side), strides (0 included), offset,
    dtype, and now and then the meta device."""
    dims = rng.randint(0, 3)
    shape = [rng.choice([1, 2, 7, 200, 50_000]) for _ in range(dims)]
    strides = [rng.choice([0, 1, 3]) for _ in range(dims)]
    dtype = rng.choice([torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16])
    storage = torch.zeros(rng.choice([1, 4, 64]), dtype=dtype)
    span = sum((n - 1) * s for n, s in zip(shape, strides))
    if span >= storage.numel():
        strides = [0] * dims
    offset = rng.randrange(storage.numel() - sum((n - 1) * s for n, s in zip(shape, strides)))
    view = storage.as_strided(shape, strides, offset)
    return torch.empty(shape, dtype=dtype, device="meta") if rng.random() < 0.1 else view


def checkpoint_forgeries(rng):
    """A random weight of the default FLMN checkpoint replaced by a random view (random_view)."""
    from flmn_core import CheckpointError, load_model
    from flmn_core.model import zoo

    payload = torch.load(zoo.weights_path(zoo.default("flmn").name), weights_only=True)
    counts = {"tried": 0, "unhandled": 0, "refused": 0, "loaded": 0}
    with tempfile.TemporaryDirectory() as folder:
        forged = Path(folder) / "forged.pt"
        for _ in range(600):
            key = rng.choice(sorted(payload["state_dict"]))
            torch.save({**payload, "state_dict": {**payload["state_dict"], key: random_view(rng)}}, forged)
            counts["tried"] += 1
            try:
                load_model(forged)
            except CheckpointError:
                counts["refused"] += 1
            except Exception:  # noqa: BLE001
                counts["unhandled"] += 1
            else:
                counts["loaded"] += 1  # a view that is a true weight: the right shape, dtype and storage
    return counts


def episode_bytes(rng):
    """Byte flips (1 to 3 bytes) and truncations of the app's example episode file."""
    from flmn_core.interactive.episode import EpisodeError, InteractiveEpisode
    from flmn_core.interactive.examples import EXAMPLE_PATH

    content = EXAMPLE_PATH.read_bytes()
    counts = {"tried": 0, "unhandled": 0, "refused": 0, "loaded": 0}
    for trial in range(5300):
        data = bytearray(content[: rng.randrange(len(content))] if trial < 300 else content)
        for _ in range(rng.randint(1, 3) if trial >= 300 else 0):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        counts["tried"] += 1
        try:
            InteractiveEpisode.load(bytes(data))
        except EpisodeError:
            counts["refused"] += 1
        except Exception:  # noqa: BLE001
            counts["unhandled"] += 1
        else:
            counts["loaded"] += 1
    return counts


def resume_states(rng):
    """A real last.pt's training state with one entry, at any depth, replaced by a random value; then the
    checks `flmn train --resume` runs before using it."""
    from flmn_core.model.checkpoint import load_checkpoint
    from flmn_core.model.networks import build_model
    from flmn_core.training import train
    from flmn_core.training.config import TrainConfig
    from flmn_core.training.resume import check_training_state, resume_config

    config = TrainConfig(episodes=16, batch_size=4)
    counts = {"tried": 0, "unhandled": 0, "refused": 0, "accepted": 0}
    with tempfile.TemporaryDirectory() as folder:
        model = build_model("flmn", controller_size=16, memory_rows=8, word_size=8)
        optimizer = train.make_optimizer(config, model)
        model(torch.rand(1, 10, 20, 20), torch.zeros(1, 10, 5)).sum().backward()
        optimizer.step()
        run = train.Run(config, Path(folder), model, optimizer, torch.Generator().manual_seed(0))
        run.save("last.pt", {}, with_training=True)
        for _ in range(1000):
            payload = load_checkpoint(Path(folder) / "last.pt")
            node, path = payload["training"], []
            while isinstance(node, dict) and node and (not path or rng.random() < 0.6):
                path.append(rng.choice(list(node)))
                parent, node = node, node[path[-1]]
            parent[path[-1]] = rng.choice([None, "x", -1, math.nan, math.inf, True, [], {}, {0: {}}, 10**30,
                                           torch.zeros(3), torch.zeros(2, 2, dtype=torch.long),
                                           torch.empty(1, device="meta")])
            counts["tried"] += 1
            try:
                resume_config(payload, "last.pt")
                check_training_state(payload["training"], train.make_optimizer(config, model))
            except ValueError:
                counts["refused"] += 1
            except Exception:  # noqa: BLE001
                counts["unhandled"] += 1
            else:
                counts["accepted"] += 1  # a value the run can use (an unused setting, say)
    return counts


def links(rng):
    """Random query strings (known and unknown keys, any characters) on the Episode explorer and Play."""
    from streamlit.testing.v1 import AppTest

    keys = ["source", "seed", "samples", "step", "shuffle", "show", "episode", "answers", "x"]
    counts = {"tried": 0, "unhandled": 0}
    for page in ("app_pages/explorer.py", "app_pages/play.py"):
        for _ in range(150):
            params = {rng.choice(keys): rng.choice(FUZZ_VALUES + ["".join(chr(rng.randrange(32, 0x3000))
                                                                          for _ in range(rng.randint(1, 12)))])
                      for _ in range(rng.randint(1, 5))}
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            at.query_params.update(params)
            counts["tried"] += 1
            try:
                at.switch_page(page).run()
                counts["unhandled"] += bool(at.exception)
            except Exception:  # noqa: BLE001
                counts["unhandled"] += 1
    return counts


def options(rng):
    """Every numeric option of `flmn train` and `flmn evaluate` given each of FUZZ_VALUES, parsed as the
    commands parse them: a usage message (exit 2) or a config is handled, anything else is not."""
    from flmn_core.model import zoo
    from flmn_core.training import evaluate
    from flmn_core.training import options as train_options

    counts = {"tried": 0, "unhandled": 0, "refused": 0, "accepted": 0}
    checkpoint = str(zoo.weights_path(zoo.default("flmn").name))
    parsers = [(train_options.parse, [], train_options.build_parser()),
               (evaluate.parse_args, ["--checkpoint", checkpoint],
                evaluate.parse_args(["--checkpoint", checkpoint])[1])]
    for parse, base, parser in parsers:
        numeric = [a.option_strings[0] for a in parser._actions if a.type in (int, float) or
                   getattr(a.type, "__name__", "") in ("positive_int", "seed_int")]
        for option in numeric:
            for value in FUZZ_VALUES:
                counts["tried"] += 1
                try:
                    with contextlib.redirect_stderr(io.StringIO()):
                        parse([*base, option, value])
                except SystemExit as stop:
                    counts["refused" if stop.code == 2 else "unhandled"] += 1
                except Exception:  # noqa: BLE001
                    counts["unhandled"] += 1
                else:
                    counts["accepted"] += 1
    return counts


SURFACES = {"checkpoint bytes": checkpoint_bytes, "checkpoint forgeries": checkpoint_forgeries,
            "episode file bytes": episode_bytes, "resume states": resume_states, "links": links,
            "command-line values": options}


def measure(name):
    """Run one surface in this process -> its counts with the peak resident memory in MB."""
    torch.set_num_threads(1)
    counts = SURFACES[name](random.Random(0))
    counts["peak MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(SURFACES), help="measure one surface")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # a child's run
    args = parser.parse_args(argv)
    if args.in_process:
        print(json.dumps(measure(args.only)))
        return
    for name in [args.only] if args.only else SURFACES:
        child = subprocess.run([sys.executable, "-m", "bench.attack_surfaces", "--only", name, "--in-process"],
                               cwd=ROOT, capture_output=True, text=True)
        if child.returncode:
            print(f"{name}: the measuring process failed\n{child.stderr[-2000:]}")
            continue
        counts = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name:22s} " + ", ".join(f"{key} {value:,}" for key, value in counts.items()), flush=True)


if __name__ == "__main__":
    main()
