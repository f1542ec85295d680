"""Training speed of flmn_core's models against a plain per-step PyTorch loop, on one core.

    python -m bench.train_speed                       # FLMN, batches 16 and 64, eager and compiled, 5 rounds
    python -m bench.train_speed --rounds 3 --no-compile

Prints, for each batch size, episodes per second of process CPU time (one thread) of: the baseline (a plain
per-step loop, `PlainFLMN`), the project's model run eagerly, and the project's model under torch.compile
(as `flmn_core.training.train --compile` runs it); they are measured alternately in the same run, so the ratios hold
when the machine's speed drifts. Then the batch-1 step latency that the app pays, and the time of 10,000
evaluation episodes. (One run on two cores: bench/two_cores.py.) The machine is printed first. Pause other
work (training runs) while it runs: two busy cores make every timing wrong.
"""

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import flmn_core
from flmn_core.data.episodes import offset_labels
from flmn_core.model.networks import MODELS
from flmn_core.training.evaluate import evaluate_model, positive_int

STEPS = 50  # T = 5 classes x 10 samples


class PlainFLMN(nn.Module):
    """The baseline: FLMN written the straightforward way, one step at a time, with nn.LSTMCell, the
    controller input concatenated at every step, the classifier inside the loop and F.cosine_similarity.
    Same sizes and equations as flmn_core.FLMN (key strength and variants left out)."""

    def __init__(self, classes=5, hidden=200, rows=64, word=40):
        super().__init__()
        self.rows, self.word = rows, word
        self.cell = nn.LSTMCell(400 + classes + word, hidden)
        self.interface = nn.Linear(hidden, 3 * word)
        self.gate = nn.Parameter(torch.zeros(1))
        self.out = nn.Linear(hidden + word, classes)

    def forward(self, images, prev_labels):
        B, T = images.shape[:2]
        h = c = torch.zeros(B, self.cell.hidden_size)
        read = torch.zeros(B, self.word)
        mf, ml = torch.zeros(B, self.rows, self.word), torch.zeros(B, self.rows, self.word)
        wr = wf_prev = torch.zeros(B, self.rows)
        usage = torch.zeros(B, self.rows)
        lu = F.one_hot(usage.argmin(1), self.rows).float()
        logits = []
        for t in range(T):
            h, c = self.cell(torch.cat([images[:, t].reshape(B, -1), prev_labels[:, t], read], 1), (h, c))
            k, af, al = torch.tanh(self.interface(h)).chunk(3, 1)
            wf = torch.sigmoid(self.gate) * wr + (1 - torch.sigmoid(self.gate)) * lu
            mf = mf * (1 - lu).unsqueeze(2) + wf.unsqueeze(2) * af.unsqueeze(1)
            ml = ml * (1 - lu).unsqueeze(2) + wf_prev.unsqueeze(2) * al.unsqueeze(1)
            wr = F.softmax(F.cosine_similarity(k.unsqueeze(1), mf, dim=2, eps=1e-8), 1)
            read = (wr.unsqueeze(2) * ml).sum(1)
            usage = 0.95 * usage + wr + wf
            lu = F.one_hot(usage.argmin(1), self.rows).float()
            wf_prev = wf
            logits.append(self.out(torch.cat([h, read], 1)))
        return torch.stack(logits, 1)


def random_batch(batch, classes=5, seed=0):
    """Random images and labels of a batch of episodes (the cost does not depend on them)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch, STEPS), generator=g)
    return torch.rand(batch, STEPS, 20, 20, generator=g), offset_labels(labels, classes), labels


def step_function(model, compiled):
    """One optimizer step of `model` on a batch -> a function of the batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(images, prev, labels):
        return F.cross_entropy(model(images, prev).flatten(0, 1), labels.flatten())

    loss_of = torch.compile(loss_of, dynamic=False) if compiled else loss_of

    def one_step(batch):
        loss = loss_of(*batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return one_step


def rate(one_step, batch, steps):
    """Episodes per second of process CPU time over `steps` steps after one warm-up step."""
    one_step(batch)
    start = time.process_time()
    for _ in range(steps):
        one_step(batch)
    return batch[0].shape[0] * steps / (time.process_time() - start)


def single_core_rates(args, batch_size):
    """{name: [CPU-time rate per round]} of the baseline and the project, eager and compiled."""
    batch = random_batch(batch_size)
    torch.manual_seed(0)
    contenders = {"baseline": step_function(PlainFLMN(), compiled=False)}
    project = flmn_core.build_model(args.model)
    contenders["project eager"] = step_function(project, compiled=False)
    if args.compile:
        compiled = flmn_core.build_model(args.model)
        contenders["project compiled"] = step_function(compiled, compiled=True)
        start = time.perf_counter()
        contenders["project compiled"](batch)
        print(f"batch {batch_size:3d}: compiling the training step took {time.perf_counter() - start:.0f} s")
    rounds = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, one_step in contenders.items():
            rounds[name].append(rate(one_step, batch, args.steps))
    return rounds


def print_single_core(batch_size, rounds):
    for name, values in rounds.items():
        print(f"batch {batch_size:3d} {name:17s}: {statistics.median(values):7.1f} episodes/s of CPU "
              f"time (median of {len(values)})")
    for name in rounds:
        if name != "baseline":
            ratios = [p / b for p, b in zip(rounds[name], rounds["baseline"])]
            print(f"batch {batch_size:3d} ratio {name} / baseline (CPU time): median {statistics.median(ratios):.2f} "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


def step_latency(model, repeats=200):
    """Median seconds of one model.step at batch 1, as the app calls it."""
    image, prev = torch.rand(1, 20, 20), torch.zeros(1, 5)
    state, times = None, []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            _, state, _ = model.step(image, prev, state)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def evaluation_seconds(model, episodes=10_000):
    """Wall seconds to evaluate `episodes` episodes (random images; the cost does not depend on them)."""
    pool = torch.rand(50, 20, 20, 20)
    start = time.perf_counter()
    evaluate_model(model.eval(), pool, episodes, seed=0)
    return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="flmn")
    p.add_argument("--batches", type=positive_int, nargs="+", default=[16, 64])
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--steps", type=positive_int, default=8, help="training steps per round")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="also time torch.compile")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"({cpu_model()}), torch {torch.__version__}, 1 thread per process; load average {os.getloadavg()[0]:.1f}")
    if args.model == "mann":
        print("(the baseline is a plain FLMN: ratios for MANN compare different models)")
    for batch_size in args.batches:
        print_single_core(batch_size, single_core_rates(args, batch_size))
    model = flmn_core.build_model(args.model).eval()
    print(f"step at batch 1 (the app): median {1000 * step_latency(model):.2f} ms")
    print(f"10,000 evaluation episodes: {evaluation_seconds(model):.1f} s wall")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), or 'unknown CPU'."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    main()
