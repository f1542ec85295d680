"""The GPU check: training throughput by batch size, eager and compiled, on the accelerator this machine has.

    python -m bench.gpu_check                              # flmn-conv's training config, batches 16 to 1024
    python -m bench.gpu_check --config checkpoints/flmn-retrieve.pt --batches 64 256 --bf16
    python -m bench.gpu_check --device cpu --batches 16 --no-compile    # the same measurement on the CPU

`--device auto` (the default, as `flmn train`'s) takes a CUDA GPU, then Apple's MPS; with neither, the check
says so and measures nothing. For each batch size: episodes per second of wall time of the project's training
step on the device (`flmn_core.training.train`: the forward, the retrieval loss where the config has one, the
backward, clipping, the optimizer), run eagerly and under torch.compile as `train --compile` runs it, in
alternating rounds, with the median, the spread and the compiled/eager ratio. The episodes are random (the
cost does not depend on them), sampled before timing. Then how many episodes per second one CPU core samples
for the config, which a run on a GPU must keep up with (`--sample-ahead` takes it off the training process,
data-parallel processes sample while they wait), and whether a checkpoint saved from the device holds CPU
tensors only, as one must to load on a machine without a GPU. Needs no data folder.
"""

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.train_speed import cpu_model
from flmn_core.model.checkpoint import load_checkpoint, save_checkpoint
from flmn_core.model.networks import build_model
from flmn_core.training.config import TrainConfig
from flmn_core.training.devices import pick_device
from flmn_core.training.train import apply_gradients, make_optimizer, sample_training_batch, training_step

POOL_CHARACTERS = 50  # random characters of 20 drawings to sample the episodes from


def accelerator_name(device):
    """The device in words: the card's name and memory, or the CPU's model."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return f"{device} ({properties.name}, {properties.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    if device.type == "mps":
        return "mps (Apple's GPU)"
    return f"cpu ({cpu_model()}, torch threads: {torch.get_num_threads()})"


def synchronize(device):
    """Wait until the device has done all the work queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def random_pools(seed=0):
    """(images [characters, 20, 20, 20], full-size copies [characters, 20, 42, 42]) of random pixels, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(POOL_CHARACTERS, 20, 20, 20, generator=generator),
            torch.rand(POOL_CHARACTERS, 20, 42, 42, generator=generator))


def sample(config, batch_size, seed=0):
    """A training batch of the config's episodes, sampled on the CPU from random pools."""
    images, full_size = random_pools()
    return sample_training_batch(config, images, batch_size, torch.Generator().manual_seed(seed),
                                 characters=None, raw_images=full_size)


def stepper(config, device, compiled, bf16):
    """A fresh model's training step on the device -> a function of a batch already there."""
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = build_model(config.model_name, **dataclasses.asdict(config.model))
    model.to(device)
    optimizer = make_optimizer(config, model)
    forward = training_step(model, config, compiled, bf16)

    def one_step(batch):
        _, loss = forward(batch.images, batch.prev_labels, batch.labels, batch.instances)
        apply_gradients(model, optimizer, loss, config.clip, world=1)

    return one_step, model, optimizer


def rate(one_step, batch, steps, device):
    """Episodes per second of wall time over `steps` steps on the device, after one untimed step."""
    one_step(batch)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step(batch)
    synchronize(device)
    return batch.images.shape[0] * steps / (time.perf_counter() - start)


def measure_batch(config, device, batch_size, args):
    """{way: [episodes per second per round]} of the eager and (with --compile) the compiled step."""
    batch = sample(config, batch_size).to(device)
    ways = {"eager": stepper(config, device, False, args.bf16)[0]}
    if args.compile:
        ways["compiled"] = stepper(config, device, True, args.bf16)[0]
        start = time.perf_counter()
        ways["compiled"](batch)
        synchronize(device)
        print(f"batch {batch_size:4d}: compiling the training step took {time.perf_counter() - start:.0f} s",
              flush=True)
    rates = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, one_step in ways.items():
            rates[way].append(rate(one_step, batch, args.steps, device))
    return rates


def print_batch(batch_size, rates):
    for way, values in rates.items():
        print(f"batch {batch_size:4d} {way:8s}: {statistics.median(values):9.1f} episodes/s (median of {len(values)}; "
              f"{min(values):.1f}-{max(values):.1f})", flush=True)
    if "compiled" in rates:
        ratios = [c / e for c, e in zip(rates["compiled"], rates["eager"])]
        print(f"batch {batch_size:4d} ratio compiled / eager: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})", flush=True)


def sampling_rate(config, batch_size=16, batches=5):
    """Episodes per second that one CPU core samples for the config (its augmentation included)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sample(config, batch_size)
    start = time.perf_counter()
    for seed in range(batches):
        sample(config, batch_size, seed)
    torch.set_num_threads(threads)
    return batch_size * batches / (time.perf_counter() - start)


def checkpoint_is_on_cpu(config, device):
    """Whether a checkpoint saved from a model and optimizer on the device holds CPU tensors only, read back
    without map_location."""
    one_step, model, optimizer = stepper(config, device, False, False)
    one_step(sample(config, 2).to(device))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "last.pt"
        save_checkpoint(path, model, 2, training={"optimizer": optimizer.state_dict()})
        payload = torch.load(path, weights_only=True)
    tensors = list(payload["state_dict"].values())
    tensors += [value for state in payload["training"]["optimizer"]["state"].values() for value in state.values()]
    return all(tensor.device.type == "cpu" for tensor in tensors)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="checkpoints/flmn-conv.pt", help="a checkpoint whose training config to time")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU, then MPS, else nothing), or a device to "
                                                    "measure: cuda, cuda:N, mps, cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256, 1024], help="batch sizes")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="training steps timed per way and round")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="also time torch.compile")
    p.add_argument("--bf16", action="store_true", help="the forward under bfloat16 autocast (train --bf16)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    if args.device == "auto" and device.type == "cpu":
        print(f"no accelerator: torch {torch.__version__} finds no CUDA GPU and no MPS device on this machine; "
              "nothing was measured (--device cpu measures the CPU)")
        return
    config = TrainConfig.from_dict(load_checkpoint(args.config)["train_config"])
    print(f"device: {accelerator_name(device)}; torch {torch.__version__}; {args.config}'s training config "
          f"(experiment {config.experiment}, encoder {config.model.encoder}){', bf16 autocast' if args.bf16 else ''}",
          flush=True)
    for batch_size in args.batches:
        print_batch(batch_size, measure_batch(config, device, batch_size, args))
    print(f"sampling: {sampling_rate(config):.1f} episodes/s on one CPU core (batches of 16)")
    print(f"a checkpoint saved from {device} holds CPU tensors only: "
          f"{'yes' if checkpoint_is_on_cpu(config, device) else 'NO'}")


if __name__ == "__main__":
    main()
