"""Data-parallel training: `torchrun --nproc_per_node 2 -m flmn_core.train` with gloo on the CPU.

Only rank 0 writes last.pt and the log; `--rank-checkpoints` makes every rank also write OUT/rank{R}.pt at
the end (its weights and training state), so the test can see that the replicas agree and that each rank
drew its own episodes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import flmn_core

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2


def test_two_processes_train_one_model_on_different_episodes(data_dir, omniglot, tmp_path):
    out = tmp_path / "run"
    # torch.distributed.run is what the torchrun command runs; --standalone picks a free local port.
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS), "--standalone",
               "-m", "flmn_core.train", "--dry-run", "--threads", "1", "--rank-checkpoints", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "FLMN_DATA_DIR": str(data_dir)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"

    last = flmn_core.load_checkpoint(out / "last.pt")
    replicas = [flmn_core.load_checkpoint(out / f"rank{rank}.pt") for rank in range(RANKS)]
    # --dry-run: 16 episodes in all, batches of 4 per rank -> 2 steps of 8 episodes.
    assert [payload["step"] for payload in (last, *replicas)] == [16] * (RANKS + 1)
    for payload in replicas:
        assert int(payload["training"]["optimizer"]["state"][0]["step"]) == 2
        for name, weight in last["state_dict"].items():
            assert torch.equal(payload["state_dict"][name], weight), f"{name} differs between the replicas"

    # Each rank's episode sampler is in its own state: the episodes each would draw next differ.
    next_batches = []
    for payload in replicas:
        generator = torch.Generator()
        generator.set_state(payload["training"]["generator"])
        next_batches.append(flmn_core.sample_episodes(omniglot.images, 4, generator,
                                                      characters=flmn_core.split_indices("train", omniglot.characters)).images)
    assert not torch.equal(*next_batches), "both ranks sample the same episodes"

    # One writer: each logged episode appears once, though two processes trained.
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records if r["kind"] == "train"] == [8, 16]
    assert result.stdout.count("episode 16:") == 1
