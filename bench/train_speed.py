"""Training and inference speed of flmn_core's models against a plain per-step PyTorch loop.

    python bench/train_speed.py                 # FLMN, batches 16 and 64, 5 rounds
    python bench/train_speed.py --model mann --rounds 7 --threads 1

Prints medians over rounds (baseline and project measured alternately in the same run, so the ratio holds
when the machine's speed drifts), the ratio project / baseline, the batch-1 step latency that the app
pays, and the time of 10,000 evaluation episodes. Figures are episodes per second of process CPU time
and of wall time; the machine is printed first.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import flmn_core  # noqa: E402
from flmn_core.evaluate import evaluate_model  # noqa: E402
from flmn_core.models import MODELS  # noqa: E402

STEPS = 50  # T = 5 classes x 10 samples


class PlainFLMN(nn.Module):
    """The baseline: FLMN written the straightforward way, one step at a time, with nn.LSTMCell, the
    controller input concatenated at every step, the classifier inside the loop and F.cosine_similarity.
    Same sizes and equations as flmn_core.FLMN (key strength and variants left out)."""

    def __init__(self, classes=5, hidden=200, rows=64, word=40):
        super().__init__()
        self.rows, self.word = rows, word
        self.cell = nn.LSTMCell(400 + classes + word, hidden)
        self.heads = nn.Linear(hidden, 3 * word)
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
            k, af, al = torch.tanh(self.heads(h)).chunk(3, 1)
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
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch, STEPS), generator=g)
    return torch.rand(batch, STEPS, 20, 20, generator=g), labels


def train_rate(model, batch, steps):
    """Episodes per second of process CPU time and of wall time over `steps` training steps."""
    images, labels = random_batch(batch)
    prev = flmn_core.episodes.offset_labels(labels, 5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def one_step():
        loss = F.cross_entropy(model(images, prev).flatten(0, 1), labels.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        one_step()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return batch * steps / cpu, batch * steps / wall


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
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=8, help="training steps per round")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} thread(s); load average {os.getloadavg()[0]:.1f}")
    for batch in args.batches:
        project = flmn_core.build_model(args.model)
        baseline = PlainFLMN() if args.model == "flmn" else None
        rounds = {"project": [], "baseline": []}
        for _ in range(args.rounds):
            if baseline is not None:
                rounds["baseline"].append(train_rate(baseline, batch, args.steps))
            rounds["project"].append(train_rate(project, batch, args.steps))
        for name, values in rounds.items():
            if values:
                cpu = statistics.median(v[0] for v in values)
                wall = statistics.median(v[1] for v in values)
                print(f"batch {batch:3d} {name:8s}: {cpu:7.1f} episodes/s of CPU time, {wall:7.1f} of wall time "
                      f"(median of {len(values)})")
        if rounds["baseline"]:
            ratios = [p[0] / b[0] for p, b in zip(rounds["project"], rounds["baseline"])]
            print(f"batch {batch:3d} ratio project/baseline (CPU time): median {statistics.median(ratios):.2f} "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    model = flmn_core.build_model(args.model).eval()
    print(f"step at batch 1 (the app): median {1000 * step_latency(model):.2f} ms")
    print(f"10,000 evaluation episodes: {evaluation_seconds(model):.1f} s wall")


if __name__ == "__main__":
    main()
