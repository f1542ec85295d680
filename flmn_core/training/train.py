"""Train FLMN or MANN on Omniglot episodes (the paper's Experiments I and II).

    flmn train --model flmn --experiment I --out runs/flmn-exp1
    flmn train --out runs/flmn-exp1 --resume           # continue where it stopped
    flmn train --out runs/flmn-exp1 --resume --stop-after 400000   # stop there, the schedule unchanged
    flmn train --config checkpoints/flmn-exp1.pt --out runs/again   # retrain a checkpoint
    flmn train --warm-start checkpoints/flmn-exp1.pt --out runs/more  # train a checkpoint further
    flmn train --dry-run --out /tmp/dry                 # a few tiny steps, for CI
    flmn train --out runs/x --compile --sample-ahead     # episodes sampled on the second core
    torchrun --standalone --nproc_per_node 2 -m flmn_core train ...    # the batch split over two processes
    flmn train --out runs/x --device cuda --compile --bf16   # on a GPU (--device auto, the default, finds it)
    torchrun --nnodes 2 --node-rank 0 --rdzv-endpoint HOST:29500 -m flmn_core train ...  # and so on: docs/training.md

The settings are `flmn_core.training.config.TrainConfig` and the model configs of `flmn_core.model.networks`; every field is
an option here (`--help` lists them with the papers' defaults). A run folder holds: last.pt (everything
--resume needs, written every --save-minutes and at the end), best.pt (the weights with the best
validation accuracy: the file to ship), config.json (the TrainConfig), log.jsonl (see runlog) and .lock,
which the one process training it holds (see runlock). Ctrl-C or SIGTERM saves last.pt and exits cleanly.
"""

import dataclasses
import functools
import math
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from flmn_core.data.batches import BankedBatches, Batches
from flmn_core.data.episodes import sample_episodes
from flmn_core.data.sources import DataError, augmentation_images, load_omniglot, split_indices
from flmn_core.files import atomic_text, remove_temporaries
from flmn_core.model import zoo
from flmn_core.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from flmn_core.model.networks import build_model, load_widening_labels
from flmn_core.model.retrieval import retrieval_loss
from flmn_core.training import runlog
from flmn_core.training.config import (
    TrainConfig,
    learning_rate,
)
from flmn_core.training.devices import model_device
from flmn_core.training.distributed import average_gradients, init_distributed, leave_process_group
from flmn_core.training.evaluate import evaluate_model
from flmn_core.training.metrics import INSTANCES, instance_hits
from flmn_core.training.options import parse
from flmn_core.training.resume import check_training_state, resume_config
from flmn_core.training.runlock import RunFolderBusy, hold_run_folder

VALIDATION_SEED = 1234  # the same validation episodes at every evaluation of every run
BANKED_STEPS = 2  # a data-parallel process banks up to this many steps' share of episodes while it waits
RUN_FILES = ("last.pt", "best.pt", "config.json", "log.jsonl")  # what a run writes into its folder


class Stop:
    """Set by SIGTERM or Ctrl-C, so the loop finishes its step, saves and exits; or due once `after` episodes
    are trained (--stop-after: a run cut short of its schedule, at a chosen episode, to compare or ship)."""

    def __init__(self, after=None):
        self.requested = False
        self.after = after
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.request)

    def request(self, signum, frame):
        self.requested = True

    def due(self, episodes):
        """Whether the loop should stop once `episodes` are trained."""
        return self.requested or (self.after is not None and episodes >= self.after)


def make_optimizer(config, model):
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.RMSprop(model.parameters(), lr=config.lr, momentum=0.9)


class Run:
    """A training run's mutable state; `save` writes it so that `--resume` continues exactly."""

    def __init__(self, config, out, model, optimizer, generator):
        self.config, self.out, self.model, self.optimizer, self.generator = config, Path(out), model, optimizer, generator
        self.episode = 0  # episodes trained, all processes together
        self.best = -1.0  # best validation accuracy so far
        self.cpu_seconds = 0.0  # CPU time of the training process(es) so far
        self.wall_seconds = 0.0  # wall-clock time of training so far (across resumes; compiling included)

    def training_state(self):
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "episode": self.episode, "best": self.best, "cpu_seconds": self.cpu_seconds,
                "wall_seconds": self.wall_seconds, "config": self.config.to_dict()}

    def save(self, name, metrics, with_training):
        """Write a checkpoint into the run folder; a failed write (a full disk) exits, keeping the last good one."""
        with written(self.out / name):
            save_checkpoint(self.out / name, self.model, self.episode, metrics,
                            self.training_state() if with_training else None, train_config=self.config.to_dict())

    def warm_start(self, payload, path):
        """Take a shipped checkpoint's weights, episode count and CPU time; its log, if shipped beside it, becomes
        this run's log, and it is this run's best.pt until a validation beats it. When the run changes what it
        trains on (any setting but episodes), the first validation replaces it: the checkpoint was chosen for
        other training, and selection begins afresh."""
        try:
            load_widening_labels(self.model, payload["state_dict"])
        except ValueError as error:
            sys.exit(f"error: --warm-start {path}: its weights do not fit this run's model ({error}); only --classes "
                     "may grow")
        self.episode = payload["step"]
        self.cpu_seconds = recorded_number(payload["metrics"], ("cpu_seconds",), 0.0)
        same = dataclasses.replace(TrainConfig.from_dict(payload["train_config"]), episodes=self.config.episodes)
        validated = recorded_number(payload["metrics"], ("validation", "overall_accuracy"), -1.0)
        self.best = validated if same == self.config else -1.0
        self.generator.manual_seed(episode_stream_seed(self.config, 0, self.episode))  # not the first run's episodes
        shipped_log = zoo.log_path(Path(path).stem, Path(path).parent)
        records = [r for r in runlog.read(shipped_log) if r["episode"] <= self.episode]
        with written(self.out / "log.jsonl"):
            runlog.write(self.out / "log.jsonl", records + [{"kind": "warm_start", "episode": self.episode,
                                                             "cpu_seconds": self.cpu_seconds}])
        self.save("best.pt", payload["metrics"], with_training=False)

    def restore(self, payload):
        self.model.load_state_dict(payload["state_dict"])
        training = payload["training"]
        self.optimizer.load_state_dict(training["optimizer"])
        self.generator.set_state(training["generator"])
        self.episode, self.best, self.cpu_seconds = training["episode"], training["best"], training["cpu_seconds"]
        self.wall_seconds = training.get("wall_seconds", 0.0)


def recorded_number(metrics, keys, default):
    """The number a checkpoint's metrics hold under keys (a path through nested dicts), or default where they
    hold none: metrics are plain data of any shape, read here only to carry a run's counters on."""
    value = metrics
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


@contextmanager
def written(path):
    """Exit cleanly when writing a file of the run fails (a full disk, a folder made read-only): say which
    file, why and what to do. Every file is written atomically or appended, so the files written before,
    last.pt among them, stay as they were."""
    try:
        yield
    except OSError as error:
        path = Path(path)
        then = ("continue with --resume: last.pt keeps the last saved state" if (path.parent / "last.pt").exists()
                else "start the run again")
        sys.exit(f"error: could not write {path} ({error.strerror or error}); the run's other files are kept as "
                 f"they were. Free some space on its disk (`df -h {path.parent}` shows what is left) or make the "
                 f"folder writable, then {then}.")


def episode_stream_seed(config, rank, episode):
    """The seed of a process's training episodes when it starts at `episode` of a run: another stream for each
    process and starting point, so a continued run does not draw the episodes it began with again."""
    return config.seed * 1000 + rank + 7919 * episode


def apply_gradients(model, optimizer, loss, clip, world, while_waiting=None, stop=False):
    """The update of one training step: backward from the batch's loss, the gradients averaged over the
    processes of a data-parallel run (doing `while_waiting` meanwhile), clipped to norm `clip`, applied.
    -> whether this process (`stop`) or any other asked to stop after this step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if world > 1:
        stop = average_gradients(model.parameters(), world, while_waiting, stop)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return stop


def resume_payload(out):
    """The last.pt of a run folder with its training state -> (payload, TrainConfig), or exit with a message."""
    path = Path(out) / "last.pt"
    try:
        payload = load_checkpoint(path)
        return payload, resume_config(payload, path)
    except CheckpointError as error:
        sys.exit(f"error: cannot resume: {error}")
    except ValueError as error:
        cannot_resume(path, error)


def cannot_resume(path, error):
    """Exit: the run cannot continue from the training state in path, which is kept as it is."""
    sys.exit(f"error: cannot resume: {path}: {error}. The file is kept as it is.")


def check_out_folder(out, resume):
    """Refuse a fresh run into a folder that already holds one."""
    if not resume and any((out / name).exists() for name in RUN_FILES):
        sys.exit(f"error: {out} already holds a run; continue it with --resume, or choose another --out")


def check_run(args, config, world):
    """Refuse a run that the process's options cannot carry out with this config over `world` processes."""
    if args.warm_start and world > 1:
        sys.exit("error: --warm-start runs in one process; continue it data-parallel with --resume")
    if config.batch_size % world:
        sys.exit(f"error: a batch of {config.batch_size} episodes does not split evenly over {world} processes")
    if world > 1 and config.classes_range[0] != config.classes_range[1]:
        sys.exit("error: a data-parallel run needs one class count for all its batches; --min-classes draws one "
                 "per batch, which the processes would draw apart: train it in one process")
    if args.sample_ahead and world > 1:
        sys.exit("error: --sample-ahead is for a run in one process; a data-parallel run samples its episodes "
                 "while it waits for the other processes")


def main(argv=None):
    """`flmn train`: parse the command line, set the run up (fresh, resumed or warm-started), train -> the Run."""
    args, config = parse(argv)
    out = Path(args.out)
    try:
        rank, world, device = init_distributed(args.device)
    except ValueError as error:
        sys.exit(f"error: {error}")
    if not args.resume:
        check_run(args, config, world)  # before the folder is made: a refused run writes nothing
    try:  # the process that writes the folder holds it; a resume of a folder that is not there holds nothing
        lock = hold_run_folder(out) if rank == 0 and (out.is_dir() or not args.resume) else None
    except RunFolderBusy as error:
        sys.exit(f"error: {error}")
    check_out_folder(out, args.resume)
    payload = None
    if args.resume:
        payload, config = resume_payload(out)
        if args.episodes is not None:
            config = dataclasses.replace(config, episodes=args.episodes)
        check_run(args, config, world)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)
    with torch.device("cpu"):  # the same initial weights on every device
        model = (build_model(config.model_name, **dataclasses.asdict(config.model)) if payload is None
                 else model_from_checkpoint(payload))
    model.to(device)
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank)
    run = Run(config, out, model, make_optimizer(config, model), generator)
    if payload is not None:
        try:
            check_training_state(payload["training"], run.optimizer)
        except ValueError as error:
            cannot_resume(out / "last.pt", error)
        run.restore(payload)
        if rank > 0:  # only rank 0's generator is saved: the others start a fresh stream of their own
            generator.manual_seed(episode_stream_seed(config, rank, run.episode))
    try:
        data = load_omniglot(args.data_dir, raw=config.experiment == "II")
    except DataError as error:
        sys.exit(f"error: {error}")
    omniglot, raw = (data[0], augmentation_images(data[1])) if config.experiment == "II" else (data, None)
    if rank == 0:
        remove_temporaries(out, RUN_FILES)  # half-written files of a killed run
        if args.warm_start:
            run.warm_start(load_checkpoint(args.warm_start), args.warm_start)
        with written(out / "log.jsonl"):
            runlog.rewind(out / "log.jsonl", run.episode)
        with written(out / "config.json"):
            atomic_text(out / "config.json", config.to_json())
    step = training_step(model, config, args.compile, args.bf16)
    train(run, step, omniglot, raw, Stop(args.stop_after), rank, world, args.save_minutes, args.sample_ahead)
    if world > 1:
        leave_process_group()
    if lock is not None:
        lock.close()
    return run


def training_step(model, config, compile_, bf16=False):
    """The function of one optimizer step's forward pass: episodes on the model's device -> (logits, loss).

    --compile compiles this forward and its backward once per process (the first step takes minutes). A run
    whose batches differ in class count, and so in length T, compiles one step of the recurrence instead:
    the whole unrolled episode would compile again for every T. --bf16 runs the forward under bfloat16
    autocast: the weights, their gradients and the recurrent state stay float32.
    """
    labels_ = config.model.classes

    def classification_loss(logits, labels):
        if config.softmax_twice:
            logits = F.softmax(logits, dim=-1)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten())

    def forward(images, prev_labels, labels, instances):
        if not config.retrieval_loss:
            logits = model(images, prev_labels)
            return logits, classification_loss(logits, labels)
        logits, recording = model(images, prev_labels, record=True)
        extra = retrieval_loss(recording, labels, instances, labels_, new_reads_nothing=config.model.null_row)
        return logits, classification_loss(logits, labels) + config.retrieval_loss * extra

    if bf16:
        forward = under_autocast(forward, model_device(model).type)
    if not compile_:
        return forward
    if config.classes_range[0] != config.classes_range[1]:
        compiled = torch.compile(model.advance, dynamic=False)
        # contiguous: a step's input is a view of all T steps' inputs, whose strides (and so the guards of a
        # compiled function) would change with T
        model.advance = lambda gates_in, state: compiled(gates_in.contiguous(), state)
        return forward
    return torch.compile(forward, dynamic=False)


def under_autocast(function, device_type):
    """`function` run under bfloat16 autocast on `device_type`."""

    def autocast(*args):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return function(*args)

    return autocast


def episode_sampler(config, omniglot, raw, world=1):
    """A run's training batches: `sample(generator=...)` -> Episodes of the training characters, augmented as
    the config says (raw: the augmentation copies of Experiment II, else None); each of a data-parallel run's
    `world` processes samples its share of the batch (or `batch_size=` episodes)."""
    return functools.partial(sample_training_batch, config, omniglot.images, batch_size=config.batch_size // world,
                             characters=split_indices("train", omniglot.characters, config.split), raw_images=raw)


def sample_training_batch(config, images, batch_size, generator, characters, raw_images):
    """A batch of training episodes as the config says; its class count C drawn from the generator first when
    the config gives a range (`TrainConfig.classes_range`), so that every episode of a batch has one length."""
    fewest, most = config.classes_range
    classes = most if fewest == most else int(
        torch.randint(fewest, most + 1, (), generator=generator, device=generator.device))
    return sample_episodes(images, batch_size, generator, classes=classes, samples=config.samples,
                           characters=characters, raw_images=raw_images, augment=config.experiment == "II",
                           rotate_classes=config.rotate_classes, widen_strokes=config.widen_strokes,
                           labels=config.model.classes, max_rotation=config.max_rotation,
                           max_shift=config.max_shift)


def training_batches(config, omniglot, raw, generator, world, ahead=False):
    """A run's batches (`flmn_core.data.batches`): in a data-parallel run, each process's share banked while it waits
    for the others, up to BANKED_STEPS steps ahead; in one process, sampled in place or `ahead`."""
    sample = episode_sampler(config, omniglot, raw, world)
    if world == 1:
        return Batches(sample, generator, ahead)
    share = config.batch_size // world
    return BankedBatches(sample, generator, share, room=BANKED_STEPS * share)


def train(run, step, omniglot, raw, stop, rank, world, save_minutes, sample_ahead=False):
    """The training loop: sample, forward, backward, step; log, validate and save on schedule."""
    batches = training_batches(run.config, omniglot, raw, run.generator, world, sample_ahead)
    try:
        train_on(run, step, batches, omniglot, stop, rank, world, save_minutes)
    finally:
        batches.close()


def train_on(run, step, batches, omniglot, stop, rank, world, save_minutes):
    """The loop of `train`, on the batches given."""
    config, model, optimizer = run.config, run.model, run.optimizer
    device = model_device(model)
    per_step = config.batch_size
    window = Window()
    last_save, cpu_mark, wall_mark = time.monotonic(), batches.cpu_seconds(), time.monotonic()
    bar = tqdm(total=config.episodes, initial=run.episode, unit="ep", disable=rank != 0 or not sys.stderr.isatty(),
               dynamic_ncols=True, smoothing=0.05)
    model.train()
    while run.episode < config.episodes:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, run.episode)
        batch = batches.next().to(device)
        logits, loss = step(batch.images, batch.prev_labels, batch.labels, batch.instances)
        if not torch.isfinite(loss):
            sys.exit(f"error: the loss became {loss.item()} at episode {run.episode}; stopping. {kept(run.out)}")
        stop_now = apply_gradients(model, optimizer, loss, config.clip, world, batches.sample_spare,
                                   stop.due(run.episode + per_step))
        run.episode += per_step
        bar.update(per_step)
        finished = run.episode >= config.episodes
        if rank == 0:
            window.add(loss, logits, batch)
            now, wall_now = batches.cpu_seconds(), time.monotonic()
            run.cpu_seconds += (now - cpu_mark) * world
            run.wall_seconds += wall_now - wall_mark
            cpu_mark, wall_mark = now, wall_now
            if run.episode % config.log_every < per_step:
                log_window(run, window, optimizer.param_groups[0]["lr"], bar)
                window = Window()
        if run.episode % config.val_every < per_step or finished:
            validate(run, omniglot, rank, world)
        if rank == 0 and (time.monotonic() - last_save > save_minutes * 60 or stop_now or finished):
            if not all(torch.isfinite(p).all() for p in model.parameters()):  # never save weights a step broke
                sys.exit(f"error: the weights became inf or nan at episode {run.episode}; stopping. {kept(run.out)}")
            run.save("last.pt", {"cpu_seconds": run.cpu_seconds}, with_training=True)
            last_save = time.monotonic()
        if stop_now:
            if rank == 0:
                print(f"stopped at episode {run.episode}; saved {run.out / 'last.pt'} (continue with --resume)",
                      file=sys.stderr)
            break
    bar.close()


def log_window(run, window, lr, bar):
    """Append the window's training record to the run's log; show it on the progress bar, or print it when
    the output is not a terminal."""
    record = window.record(run, lr)
    with written(run.out / "log.jsonl"):
        runlog.append(run.out / "log.jsonl", record)
    accuracy = record["accuracy"]
    bar.set_postfix(loss=f"{record['loss']:.3f}", acc1=f"{accuracy[0]:.2f}", acc2=f"{accuracy[1]:.2f}",
                    acc10=f"{accuracy[9]:.2f}")
    if not sys.stderr.isatty():
        print(f"episode {run.episode}: loss {record['loss']:.4f} instance accuracy "
              + " ".join(f"{a:.3f}" for a in accuracy), flush=True)


class Window:
    """Training loss and per-instance accuracy summed over the batches since the last log line (in a
    data-parallel run, over the first process's share of each batch)."""

    def __init__(self):
        self.loss, self.batches = 0.0, 0
        self.hits, self.total = torch.zeros(INSTANCES, device="cpu"), torch.zeros(INSTANCES, device="cpu")

    def add(self, loss, logits, batch):
        hits, total = instance_hits(logits.detach(), batch.labels, batch.instances)
        self.loss += loss.item()
        self.batches += 1
        self.hits += hits.sum(0).cpu()
        self.total += total.sum(0).cpu()

    def record(self, run, lr):
        return {"kind": "train", "episode": run.episode, "loss": self.loss / max(self.batches, 1),
                "accuracy": (self.hits / self.total.clamp(min=1)).tolist(), "lr": lr, "cpu_seconds": run.cpu_seconds,
                "wall_seconds": run.wall_seconds}


def kept(out):
    """What a run stopped by a NaN leaves to continue from, for its error message."""
    last = Path(out) / "last.pt"
    where = f"{last} keeps the last good state" if last.exists() else "no checkpoint was saved yet"
    return f"{where} (try a lower --lr or --clip)."


def validate(run, omniglot, rank=0, world=1):
    """Per-instance accuracy and retrieval on the validation alphabets, each process of a data-parallel run
    evaluating its share of the episodes; the first logs them and saves best.pt when accuracy improves."""
    model, config = run.model, run.config
    model.eval()
    result = evaluate_model(model, omniglot.images, config.val_episodes, VALIDATION_SEED, config.classes_range[1],
                            config.samples, characters=split_indices("validation", omniglot.characters, config.split),
                            share=(rank, world), labels=config.model.classes)
    model.train()
    if rank != 0:
        return
    record = {"kind": "validation", "episode": run.episode, "cpu_seconds": run.cpu_seconds, "wall_seconds": run.wall_seconds,
              **{key: result[key] for key in ("accuracy", "overall_accuracy", "loss", "retrieval")}}
    with written(run.out / "log.jsonl"):
        runlog.append(run.out / "log.jsonl", record)
    print(f"validation at episode {run.episode}: instance accuracy " + " ".join(f"{a:.3f}" for a in result["accuracy"])
          + f"; retrieval {result['retrieval']['top_hit']:.3f}, mass {result['retrieval']['mass']:.3f}",
          file=sys.stderr, flush=True)
    if result["overall_accuracy"] > run.best:
        run.best = result["overall_accuracy"]
        run.save("best.pt", {"validation": record, "cpu_seconds": run.cpu_seconds}, with_training=False)

