"""Data-parallel training: `torchrun --nproc_per_node 2 -m flmn_core train` with gloo on the CPU, the batch
split over the processes; and the same over two "nodes" (`torchrun --nnodes 2 --node-rank R --rdzv-endpoint`),
here two launchers on this machine meeting at a rendezvous on 127.0.0.1, one process each.

Only rank 0 writes last.pt and the log; tests/rank_worker.py, which torchrun starts in their place, also has
every rank write OUT/rank{R}.pt at the end (its weights and training state), so the test can see that the
replicas agree and that each rank drew its own episodes.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import flmn_core
import flmn_core.training.distributed
import flmn_core.training.options
import flmn_core.training.train
from flmn_core.data.episodes import offset_labels
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.training import runlog
from flmn_core.training.config import TrainConfig
from flmn_core.training.evaluate import evaluate_model

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2
BATCH = 4  # episodes per optimizer step, split over the ranks
SPARE_WORK = 5  # calls of while_waiting that find something to do, in train_step_on_share


def tiny_setup():
    """(model, config, batch): a small FLMN with fixed weights and a fixed batch of random episodes."""
    config = dataclasses.replace(TrainConfig(), batch_size=BATCH, model=flmn_core.FLMNConfig(
        **flmn_core.training.options.DRY_RUN_MODEL))
    torch.manual_seed(0)
    model = flmn_core.build_model("flmn", **dataclasses.asdict(config.model))
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (BATCH, 50), generator=g)
    instances = torch.randint(1, 11, (BATCH, 50), generator=g)
    batch = (torch.rand(BATCH, 50, 20, 20, generator=g), offset_labels(labels, 5), labels, instances)
    return model, config, batch


def free_port():
    """A TCP port free on this machine now."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def statement_code(statement):
    """Python code that runs `statement` with this module as `t`."""
    return f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_distributed as t; {statement}"


def run_in_processes(statement):
    """Run `statement` (with this module as `t`) in RANKS processes of a gloo group, as torchrun starts them."""
    port = free_port()  # for the process group
    processes = [subprocess.Popen([sys.executable, "-c", statement_code(statement)], cwd=ROOT, stderr=subprocess.PIPE,
                                  text=True, env={**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                                  "RANK": str(rank), "WORLD_SIZE": str(RANKS)})
                 for rank in range(RANKS)]
    finish(processes)


def run_on_nodes(command, env=None):
    """Run `command` as torchrun runs a cluster's: one launcher per node (RANKS of them, all here), each starting
    one process, meeting at a rendezvous on 127.0.0.1 (with `env` added to the environment) -> what each
    printed on stdout."""
    endpoint = f"127.0.0.1:{free_port()}"
    processes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", str(RANKS),
                                   "--nproc-per-node", "1", "--node-rank", str(node), "--rdzv-endpoint", endpoint,
                                   *command], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
                 for node in range(RANKS)]
    return [printed for printed, _ in finish(processes)]


def finish(processes):
    """Wait for processes started together -> (stdout, stderr) of each, as piped; fail with the errors of the
    first that failed (the others, left waiting for it, are killed)."""
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
            assert process.returncode == 0, outputs[-1][1]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def evaluate_share(out):
    """In a process of a data-parallel group: tiny_setup's model evaluated on 8 episodes of generated
    characters in batches of 3, this process running its share of them -> out/rank{rank}.json."""
    rank, world, _ = flmn_core.training.distributed.init_distributed()
    model, _, _ = tiny_setup()
    result = evaluate_model(model.eval(), sample_glyph_pool(12, 10, seed=0), 8, 5, batch=3, share=(rank, world))
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    flmn_core.training.distributed.leave_process_group()


def test_processes_evaluating_a_share_each_get_the_evaluation_of_all_the_episodes(tmp_path):
    model, _, _ = tiny_setup()
    whole = evaluate_model(model.eval(), sample_glyph_pool(12, 10, seed=0), 8, 5, batch=3)
    run_in_processes(f"t.evaluate_share(t.Path({str(tmp_path)!r}))")
    for rank in range(RANKS):
        assert (tmp_path / f"rank{rank}.json").read_text() == json.dumps(whole), f"rank {rank} differs"


def train_step_on_share(out):
    """In a process of a data-parallel group (as torchrun starts it): one training step on this rank's share
    of the batch, plain SGD (whose update shows the gradient's scale, which Adam's would hide), rank 1 half a
    second late and asking to stop; the weights after it, the calls of while_waiting and whether the step said
    to stop -> out/rank{rank}.pt."""
    rank, world, _ = flmn_core.training.distributed.init_distributed()
    model, config, batch = tiny_setup()
    share = BATCH // world
    forward = flmn_core.training.train.training_step(model, config, compile_=False)
    _, loss = forward(*(part[rank * share:(rank + 1) * share] for part in batch))
    calls = []

    def while_waiting():
        calls.append(1)
        return len(calls) < SPARE_WORK

    if rank == 1:
        time.sleep(0.5)
    stop = flmn_core.training.train.apply_gradients(model, torch.optim.SGD(model.parameters(), lr=1.0), loss, config.clip,
                                           world, while_waiting, stop=rank == 1)
    torch.save({"weights": model.state_dict(), "calls": torch.tensor(len(calls)), "stop": torch.tensor(stop)},
               out / f"rank{rank}.pt")
    flmn_core.training.distributed.leave_process_group()


def whole_batch_step():
    """tiny_setup's weights after train_step_on_share's step taken on the whole batch in one process."""
    model, config, batch = tiny_setup()
    before = {name: weight.clone() for name, weight in model.state_dict().items()}
    _, loss = flmn_core.training.train.training_step(model, config, compile_=False)(*batch)
    assert not flmn_core.training.train.apply_gradients(model, torch.optim.SGD(model.parameters(), lr=1.0), loss, config.clip, 1)
    after = model.state_dict()
    assert all(not torch.equal(after[name], before[name]) for name in after), "a weight did not move"
    return after


def test_a_batch_split_over_two_processes_takes_the_step_of_the_whole_batch(tmp_path):
    after = whole_batch_step()
    run_in_processes(f"t.train_step_on_share(t.Path({str(tmp_path)!r}))")
    check_the_step_of_the_whole_batch(tmp_path, after)


def test_a_batch_split_over_two_nodes_takes_the_step_of_the_whole_batch(tmp_path):
    after = whole_batch_step()
    run_on_nodes(["--no-python", sys.executable, "-c",
                  statement_code(f"t.train_step_on_share(t.Path({str(tmp_path)!r}))")])
    check_the_step_of_the_whole_batch(tmp_path, after)


def check_the_step_of_the_whole_batch(out, after):
    """Assert that the ranks of train_step_on_share, whose files are in out, took the step `after`."""
    saved = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(RANKS)]
    # Rank 0, waiting half a second for rank 1, did the spare work until there was none left, and no more.
    assert saved[0]["calls"] == SPARE_WORK
    # Rank 1's request to stop reached rank 0 with the gradients: both stop after this step.
    assert [bool(payload["stop"]) for payload in saved] == [True, True]
    replicas = [payload["weights"] for payload in saved]
    for name, weight in after.items():
        assert torch.equal(replicas[0][name], replicas[1][name]), f"{name} differs between the replicas"
        torch.testing.assert_close(replicas[0][name], weight, rtol=1e-5, atol=1e-6,
                                   msg=lambda text: f"{name} is not the whole batch's step: {text}")


def test_each_process_of_a_machine_runs_on_cores_of_its_own():
    cores = sorted(os.sched_getaffinity(0))
    show = "import os, sys; from flmn_core.training.distributed import pin_to_cores; pin_to_cores(int(sys.argv[1]), 2); " \
           "print(sorted(os.sched_getaffinity(0)))"
    shares = [json.loads(subprocess.run([sys.executable, "-c", show, str(rank)], cwd=ROOT, capture_output=True,
                                        text=True, check=True).stdout) for rank in range(2)]
    assert all(len(share) == max(len(cores) // 2, 1) and set(share) <= set(cores) for share in shares), shares
    if len(cores) >= 2:
        assert not set(shares[0]) & set(shares[1]), f"two processes share a core: {shares}"


def dry_run_on(processes, out, data_dir, *options):
    """`torchrun --nproc_per_node {processes} tests/rank_worker.py --dry-run` (flmn train, then each rank's
    OUT/rank{R}.pt) into out -> the finished process. torch.distributed.run is what the torchrun command runs;
    --standalone picks a free local port."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--standalone",
               str(ROOT / "tests" / "rank_worker.py"), "--dry-run", "--threads", "1", "--out", str(out),
               *options]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, "FLMN_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(data_dir, tmp_path):
    result = dry_run_on(3, tmp_path / "run", data_dir)  # --dry-run's batch of 4 over 3 processes
    assert result.returncode != 0
    assert "a batch of 4 episodes does not split evenly over 3 processes" in result.stderr
    assert not (tmp_path / "run").exists(), "a refused run wrote files"


def test_a_data_parallel_run_does_not_also_sample_ahead(data_dir, tmp_path):
    result = dry_run_on(RANKS, tmp_path / "run", data_dir, "--sample-ahead")
    assert result.returncode != 0
    assert "--sample-ahead is for a run in one process" in result.stderr
    assert not (tmp_path / "run").exists(), "a refused run wrote files"


@pytest.mark.parametrize("machines", ["one machine", "two nodes"])
def test_two_processes_train_one_model_on_different_episodes(data_dir, omniglot, tmp_path, machines):
    out = tmp_path / "run"
    if machines == "one machine":
        result = dry_run_on(RANKS, out, data_dir)
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        printed = result.stdout
    else:  # the run folder is on a filesystem both nodes share, as --resume needs
        printed = "".join(run_on_nodes([str(ROOT / "tests" / "rank_worker.py"), "--dry-run", "--threads", "1",
                                        "--out", str(out)], {"FLMN_DATA_DIR": str(data_dir)}))

    last = flmn_core.load_checkpoint(out / "last.pt")
    replicas = [flmn_core.load_checkpoint(out / f"rank{rank}.pt") for rank in range(RANKS)]
    # --dry-run: 16 episodes in all, batches of 4 split over the ranks -> 4 steps of 2 episodes per rank.
    assert [payload["step"] for payload in (last, *replicas)] == [16] * (RANKS + 1)
    for payload in replicas:
        assert int(payload["training"]["optimizer"]["state"][0]["step"]) == 4
        for name, weight in last["state_dict"].items():
            assert torch.equal(payload["state_dict"][name], weight), f"{name} differs between the replicas"

    # Each rank's episode sampler is in its own state: the episodes each would draw next differ.
    next_batches = []
    for payload in replicas:
        generator = torch.Generator()
        generator.set_state(payload["training"]["generator"])
        next_batches.append(flmn_core.sample_episodes(omniglot.images, BATCH // RANKS, generator,
                                                      characters=flmn_core.split_indices("train", omniglot.characters)).images)
    assert not torch.equal(*next_batches), "both ranks sample the same episodes"

    # One writer: each logged episode appears once, though two processes trained.
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records if r["kind"] == "train"] == [8, 16]
    assert printed.count("episode 16:") == 1

    # The last validation, the processes' shares added up, is the final weights' in one process.
    validation = [r for r in records if r["kind"] == "validation"]
    assert [r["episode"] for r in validation] == [8, 16]
    expected = evaluate_model(flmn_core.load_model(out / "last.pt"), omniglot.images,
                              flmn_core.training.options.DRY_RUN["val_episodes"], flmn_core.training.train.VALIDATION_SEED,
                              characters=flmn_core.split_indices("validation", omniglot.characters))
    assert validation[-1]["accuracy"] == runlog.rounded("accuracy", expected["accuracy"])
