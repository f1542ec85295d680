"""Train FLMN or MANN on Omniglot episodes (the paper's Experiments I and II).

    python -m flmn_core.train --model flmn --experiment I --episodes 100000 --out runs/flmn-exp1
    python -m flmn_core.train --out runs/flmn-exp1 --resume           # continue where it stopped
    python -m flmn_core.train --dry-run                                # a few tiny steps, for CI
    torchrun --nproc_per_node 2 -m flmn_core.train ...                 # data-parallel (gloo on CPU)

A run folder holds: last.pt (everything --resume needs, written every --save-minutes and at the end),
best.pt (the weights with the best validation accuracy, no optimizer state: the file to ship),
config.json (the run's arguments) and log.jsonl (training and validation metrics).
Ctrl-C or SIGTERM saves last.pt and exits cleanly.
"""

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from .data import DataError, augmentation_images, load_omniglot, split_indices
from .episodes import sample_episodes
from .evaluate import INSTANCES, evaluate_model, instance_hits
from .files import atomic_text, remove_temporaries
from .models import MODELS, build_model

VALIDATION_SEED = 1234  # the same validation episodes at every evaluation of every run
# Options of this process rather than of the run: on --resume they come from the command line, so that a
# moved run folder, another data folder or machine, or a new save interval just work.
PROCESS_OPTIONS = ("out", "data_dir", "threads", "save_minutes", "rank_checkpoints")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="flmn")
    p.add_argument("--experiment", choices=("I", "II"), default="I", help="II adds rotation and translation")
    p.add_argument("--rotate-classes", action="store_true", help="also use 90/180/270-degree rotations as classes")
    model = p.add_argument_group("model (defaults: the papers')")
    model.add_argument("--controller-size", type=int, default=200)
    model.add_argument("--memory-rows", type=int, default=128, help="N (FLMN: N/2 feature + N/2 label rows)")
    model.add_argument("--word-size", type=int, default=40)
    model.add_argument("--read-heads", type=int, default=1, help="MANN only")
    model.add_argument("--gamma", type=float, default=0.95)
    model.add_argument("--write-content", choices=("key", "add"), default="key", help="MANN only")
    model.add_argument("--key-strength", action="store_true", help="variant: learned key strength")
    model.add_argument("--read-first", action="store_true", help="variant: read before this step's write")
    model.add_argument("--keep-label-rows", action="store_true", help="FLMN: Eq. (7) clears feature rows only")
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", choices=("adam", "rmsprop"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine decays the rate to 1/20 over --episodes")
    p.add_argument("--clip", type=float, default=10.0, help="gradient-norm clipping")
    p.add_argument("--episodes", type=int, default=None,
                   help="training episodes in all processes together (default 100000; with --resume: the run's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/flmn-exp1", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (with --episodes, extend it)")
    p.add_argument("--save-minutes", type=float, default=2.0, help="write last.pt this often")
    p.add_argument("--log-every", type=int, default=2000, help="episodes between training log lines")
    p.add_argument("--val-every", type=int, default=10_000, help="episodes between validations")
    p.add_argument("--val-episodes", type=int, default=1000)
    p.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: PyTorch's)")
    p.add_argument("--dry-run", action="store_true", help="a few steps on tiny settings, then exit")
    p.add_argument("--rank-checkpoints", action="store_true",
                   help="debugging: at the end every process also writes OUT/rank{R}.pt (weights and training state)")
    args = p.parse_args(argv)
    if args.dry_run:
        args.episodes, args.batch_size, args.log_every, args.val_every, args.val_episodes = 16, 4, 8, 8, 8
        args.controller_size, args.memory_rows, args.word_size = 16, 8, 8
    return args


def model_config(args):
    """The model's config values from the command line (only the ones the model has)."""
    config = dict(classes=args.classes, controller_size=args.controller_size, memory_rows=args.memory_rows,
                  word_size=args.word_size, gamma=args.gamma, key_strength=args.key_strength, read_first=args.read_first)
    if args.model == "mann":
        config.update(read_heads=args.read_heads, write_content=args.write_content)
    else:
        config.update(label_word_size=args.word_size, clear_label_rows=not args.keep_label_rows)
    return config


class Stop:
    """Set by SIGTERM or Ctrl-C, so the loop finishes its step, saves and exits."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.request)

    def request(self, signum, frame):
        self.requested = True


def learning_rate(args, episode):
    """The learning rate at an episode count."""
    if args.lr_schedule == "constant":
        return args.lr
    progress = min(episode / args.episodes, 1.0)
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(args, model):
    if args.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=args.lr)
    return torch.optim.RMSprop(model.parameters(), lr=args.lr, momentum=0.9)


class Run:
    """A training run's mutable state; `save` writes it so that `--resume` continues exactly."""

    def __init__(self, args, model, optimizer, generator):
        self.args, self.model, self.optimizer, self.generator = args, model, optimizer, generator
        self.episode = 0  # episodes trained, all processes together
        self.best = -1.0  # best validation accuracy so far
        self.cpu_seconds = 0.0  # CPU time of the training process(es) so far

    def training_state(self):
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "episode": self.episode, "best": self.best, "cpu_seconds": self.cpu_seconds, "args": vars(self.args)}

    def save(self, name, metrics, with_training):
        save_checkpoint(Path(self.args.out) / name, unwrap(self.model), self.episode, metrics,
                        self.training_state() if with_training else None)

    def restore(self, payload):
        unwrap(self.model).load_state_dict(payload["state_dict"])
        training = payload["training"]
        self.optimizer.load_state_dict(training["optimizer"])
        self.generator.set_state(training["generator"])
        self.episode, self.best, self.cpu_seconds = training["episode"], training["best"], training["cpu_seconds"]


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def log_line(path, record):
    """Append one JSON record to the run's log."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def init_distributed():
    """(rank, world_size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), world
    return 0, 1


def resume_payload(args):
    """The last.pt of a run folder, checked, or exit with a message."""
    path = Path(args.out) / "last.pt"
    try:
        payload = load_checkpoint(path)
    except CheckpointError as error:
        sys.exit(f"error: cannot resume: {error}")
    if "training" not in payload:
        sys.exit(f"error: cannot resume: {path} holds no training state")
    return payload


def main(argv=None):
    args = parse_args(argv)
    rank, world = init_distributed()
    payload = None
    if args.resume:  # the run's own arguments, but a new --episodes extends it
        payload = resume_payload(args)
        saved, given = payload["training"]["args"], vars(args)
        args = argparse.Namespace(**{**vars(parse_args([])), **saved, **{k: given[k] for k in PROCESS_OPTIONS},
                                     "resume": True, "episodes": given["episodes"] or saved["episodes"]})
    args.episodes = args.episodes or 100_000
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    torch.manual_seed(args.seed)
    model = build_model(args.model, **model_config(args)) if payload is None else model_from_checkpoint(payload)
    optimizer = make_optimizer(args, model)
    generator = torch.Generator().manual_seed(args.seed * 1000 + rank)
    run = Run(args, model, optimizer, generator)
    if payload is not None:
        run.restore(payload)
        if rank > 0:  # only rank 0's generator is saved: the others start a fresh stream of their own
            generator.manual_seed(args.seed * 1000 + rank + 7919 * run.episode)
    if world > 1:
        run.model = torch.nn.parallel.DistributedDataParallel(model)
    try:
        data = load_omniglot(args.data_dir, raw=args.experiment == "II")
    except DataError as error:
        sys.exit(f"error: {error}")
    omniglot, raw = (data[0], augmentation_images(data[1])) if args.experiment == "II" else (data, None)
    train_chars, val_chars = split_indices("train"), split_indices("validation")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        remove_temporaries(out)  # half-written files of a killed run
        if payload is not None:
            drop_log_after(out / "log.jsonl", run.episode)
        atomic_text(out / "config.json", json.dumps({"args": vars(args), "model_config": model_config(args)}, indent=2) + "\n")
    stop = Stop()
    train(run, omniglot, raw, train_chars, val_chars, stop, rank, world)
    if args.rank_checkpoints:
        run.save(f"rank{rank}.pt", {"rank": rank}, with_training=True)
    if world > 1:
        dist.destroy_process_group()


def train(run, omniglot, raw, train_chars, val_chars, stop, rank, world):
    """The training loop: sample, forward, backward, step; log, validate and save on schedule."""
    args, model, optimizer = run.args, run.model, run.optimizer
    log_path = Path(args.out) / "log.jsonl"
    per_step = args.batch_size * world
    window = {"loss": 0.0, "batches": 0, "hits": torch.zeros(INSTANCES), "total": torch.zeros(INSTANCES)}
    last_save, cpu_mark = time.monotonic(), time.process_time()
    bar = tqdm(total=args.episodes, initial=run.episode, unit="ep", disable=rank != 0 or not sys.stderr.isatty(),
               dynamic_ncols=True, smoothing=0.05)
    model.train()
    while run.episode < args.episodes:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, run.episode)
        batch = sample_episodes(omniglot.images, args.batch_size, run.generator, args.classes, args.samples,
                                characters=train_chars, raw_images=raw, augment=args.experiment == "II",
                                rotate_classes=args.rotate_classes)
        logits = model(batch.images, batch.prev_labels)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten())
        if not torch.isfinite(loss):
            sys.exit(f"error: the loss became {loss.item()} at episode {run.episode}; stopping. {kept(args)}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        run.episode += per_step
        bar.update(per_step)

        hits, total = instance_hits(logits.detach(), batch.labels, batch.instances)
        window["loss"] += loss.item()
        window["batches"] += 1
        window["hits"] += hits.sum(0)
        window["total"] += total.sum(0)
        stop_now = stop_everywhere(stop.requested, world)
        if rank != 0:
            if stop_now:
                break
            continue
        now = time.process_time()
        run.cpu_seconds += (now - cpu_mark) * world
        cpu_mark = now
        if run.episode % args.log_every < per_step:
            accuracy = (window["hits"] / window["total"].clamp(min=1)).tolist()
            record = {"episode": run.episode, "loss": window["loss"] / window["batches"], "accuracy": accuracy,
                      "lr": optimizer.param_groups[0]["lr"], "cpu_seconds": run.cpu_seconds}
            log_line(log_path, {"kind": "train", **record})
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc1=f"{accuracy[0]:.2f}", acc2=f"{accuracy[1]:.2f}",
                            acc10=f"{accuracy[9]:.2f}")
            if not sys.stderr.isatty():
                print(f"episode {run.episode}: loss {record['loss']:.4f} instance accuracy "
                      + " ".join(f"{a:.3f}" for a in accuracy), flush=True)
            window = {"loss": 0.0, "batches": 0, "hits": torch.zeros(INSTANCES), "total": torch.zeros(INSTANCES)}
        if run.episode % args.val_every < per_step or run.episode >= args.episodes:
            validate(run, omniglot, val_chars, log_path)
        if time.monotonic() - last_save > args.save_minutes * 60 or stop_now or run.episode >= args.episodes:
            if not all(torch.isfinite(p).all() for p in model.parameters()):  # never save weights a step broke
                sys.exit(f"error: the weights became inf or nan at episode {run.episode}; stopping. {kept(args)}")
            run.save("last.pt", {"cpu_seconds": run.cpu_seconds}, with_training=True)
            last_save = time.monotonic()
        if stop_now:
            print(f"stopped at episode {run.episode}; saved {Path(args.out) / 'last.pt'} (continue with --resume)", file=sys.stderr)
            break
    bar.close()


def kept(args):
    """What a run stopped by a NaN leaves to continue from, for its error message."""
    last = Path(args.out) / "last.pt"
    where = f"{last} keeps the last good state" if last.exists() else "no checkpoint was saved yet"
    return f"{where} (try a lower --lr or --clip)."


def drop_log_after(path, episode):
    """Keep the log records up to the episode a run resumes from: the resumed run redoes and logs the rest."""
    if not path.exists():
        return
    kept_lines = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["episode"] <= episode:
                kept_lines.append(line + "\n")
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue
    atomic_text(path, "".join(kept_lines))


def stop_everywhere(requested, world):
    """True when any process was asked to stop (so all stop at the same step)."""
    if world == 1:
        return requested
    flag = torch.tensor([float(requested)])
    dist.all_reduce(flag)
    return bool(flag.item())


def validate(run, omniglot, val_chars, log_path):
    """Per-instance accuracy on the validation characters; saves best.pt when it improves."""
    model = unwrap(run.model)
    model.eval()
    result = evaluate_model(model, omniglot.images, run.args.val_episodes, VALIDATION_SEED, run.args.classes,
                            run.args.samples, characters=val_chars)
    model.train()
    record = {"kind": "validation", "episode": run.episode, "accuracy": result["accuracy"],
              "overall_accuracy": result["overall_accuracy"], "loss": result["loss"], "cpu_seconds": run.cpu_seconds}
    log_line(log_path, record)
    print(f"validation at episode {run.episode}: instance accuracy "
          + " ".join(f"{a:.3f}" for a in result["accuracy"]), file=sys.stderr, flush=True)
    if result["overall_accuracy"] > run.best:
        run.best = result["overall_accuracy"]
        run.save("best.pt", {"validation": record, "cpu_seconds": run.cpu_seconds}, with_training=False)


if __name__ == "__main__":
    main()
