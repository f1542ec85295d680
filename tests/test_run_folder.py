"""A run folder belongs to one training process at a time, and a write that fails (a full disk, a place that
cannot be written) ends the tool with a message, never a traceback, keeping what was written before.

Real processes on the real data: two `flmn train` started together into one --out, a --resume while the run
goes, a holder killed with SIGKILL; the kernel's own write errors (a file size limit, /dev/full, /proc)."""

import os
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train import ROOT, TINY, read_log, run_train, succeeded

from flmn_core.model import zoo
from flmn_core.model.checkpoint import load_checkpoint
from flmn_core.model.networks import build_model
from flmn_core.training import train
from flmn_core.training.config import TrainConfig
from flmn_core.training.runlock import LOCK_NAME, RunFolderBusy, hold_run_folder

LOG_EVERY = int(TINY[TINY.index("--log-every") + 1])

HOLD = """
import sys, time
from flmn_core.training.runlock import hold_run_folder
lock = hold_run_folder(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def train_command(data_dir, *args):
    return subprocess.Popen([sys.executable, "-m", "flmn_core", "train", *map(str, args)], cwd=ROOT,
                            env={**os.environ, "FLMN_DATA_DIR": str(data_dir)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_run_into_a_held_folder_is_refused_and_writes_nothing(data_dir, omniglot, tmp_path):
    lock = hold_run_folder(tmp_path)
    result = run_train(data_dir, "--dry-run", "--out", tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{tmp_path} is in use by another training process (pid {os.getpid()})" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]
    with pytest.raises(RunFolderBusy, match="in use"):  # in this process too: a lock is per open, not per process
        hold_run_folder(tmp_path)
    lock.close()
    succeeded(run_train(data_dir, "--dry-run", "--out", tmp_path))


def test_two_trainings_started_together_never_mix(data_dir, omniglot, tmp_path):
    out = tmp_path / "run"
    runs = [train_command(data_dir, *TINY, "--episodes", 16, "--seed", seed, "--out", out) for seed in (1, 2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    winners = [seed for (code, _, _), seed in zip(results, (1, 2)) if code == 0]
    refused = [stderr for code, _, stderr in results if code != 0]
    assert len(winners) == len(refused) == 1, results
    assert "is in use by another training process" in refused[0] or "already holds a run" in refused[0], refused
    winner = winners[0]
    episodes = [r["episode"] for r in read_log(out) if r["kind"] == "train"]
    assert episodes == sorted(set(episodes))  # each logged once
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(out / name)["train_config"]["seed"] == winner


def test_resume_while_the_run_goes_is_refused_until_it_stops(data_dir, omniglot, tmp_path):
    out = tmp_path / "run"
    first = train_command(data_dir, *TINY, "--episodes", 1_000_000, "--save-minutes", 0, "--out", out)
    try:
        deadline = time.time() + 300
        while not (out / "last.pt").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.poll() else "slow"
            time.sleep(0.2)
        second = run_train(data_dir, "--resume", "--out", out)
        assert second.returncode != 0 and f"is in use by another training process (pid {first.pid})" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
        first.communicate()
    stopped = load_checkpoint(out / "last.pt")["step"]
    logged = (stopped // LOG_EVERY + 1) * LOG_EVERY  # SIGTERM stops at any step; a training line every LOG_EVERY
    succeeded(run_train(data_dir, "--resume", "--episodes", logged, "--out", out))
    episodes = [r["episode"] for r in read_log(out) if r["kind"] == "train"]
    assert episodes == sorted(set(episodes)) and episodes[-1] == logged


def test_a_run_folder_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    for out, reason in (("/proc/flmn-run", "cannot use /proc/flmn-run as the run folder"),
                        (tmp_path / "file", "is a file; give a folder")):
        with pytest.raises(SystemExit) as stop:
            train.main(["--dry-run", "--out", str(out)])
        assert reason in str(stop.value.code)


def test_a_holder_killed_with_sigkill_leaves_the_folder_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(RunFolderBusy, match=f"pid {holder.pid}"):
        hold_run_folder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    hold_run_folder(tmp_path).close()


# ---------------------------------------------------------------------------------------------------------
# Writes that fail


def tiny_run(out):
    """A Run of a tiny model in folder out, one optimizer step in."""
    config = TrainConfig(episodes=16, batch_size=4)
    model = build_model("flmn", controller_size=16, memory_rows=8, word_size=8)
    optimizer = train.make_optimizer(config, model)
    return train.Run(config, out, model, optimizer, torch.Generator().manual_seed(0))


def file_size_limit(limit):
    """Set this process's file size limit (RLIMIT_FSIZE): a write past it fails in the kernel with EFBIG
    (Python ignores the SIGXFSZ that would otherwise end the process) -> the old limits."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    return old


def test_a_checkpoint_that_cannot_be_written_exits_cleanly_and_keeps_the_last_good_one(tmp_path):
    run = tiny_run(tmp_path)
    run.save("last.pt", {}, with_training=True)
    good = (tmp_path / "last.pt").read_bytes()
    run.episode = 4
    old = file_size_limit(4096)  # a checkpoint of the tiny model takes more
    try:
        with pytest.raises(SystemExit) as stop:
            run.save("last.pt", {}, with_training=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
    message = str(stop.value.code)
    assert f"could not write {tmp_path / 'last.pt'} (File too large)" in message and "continue with --resume" in message
    assert (tmp_path / "last.pt").read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_log_line_on_a_full_disk_exits_cleanly(tmp_path):
    run = tiny_run(tmp_path)
    (tmp_path / "log.jsonl").symlink_to("/dev/full")  # every write to it fails: No space left on device
    window = train.Window()
    with pytest.raises(SystemExit) as stop:
        train.log_window(run, window, 1e-3, train.tqdm(disable=True))
    assert f"could not write {tmp_path / 'log.jsonl'} (No space left on device)" in str(stop.value.code)
    assert "start the run again" in str(stop.value.code)  # no last.pt yet


def test_a_training_whose_writes_fail_ends_with_a_message(data_dir, omniglot, tmp_path):
    result = subprocess.run([sys.executable, "-m", "flmn_core", "train", "--dry-run", "--threads", "1", "--out",
                             tmp_path / "run"], cwd=ROOT, env={**os.environ, "FLMN_DATA_DIR": str(data_dir)},
                            capture_output=True, text=True, timeout=300,
                            preexec_fn=lambda: file_size_limit(8192))  # config.json and log lines fit
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "could not write" in result.stderr and "File too large" in result.stderr


def evaluate(data_dir, *args, limit=None):
    return subprocess.run([sys.executable, "-m", "flmn_core", "evaluate", "--checkpoint",
                           zoo.weights_path(zoo.default("flmn").name), "--episodes", "20", "--threads", "1",
                           *map(str, args)], cwd=ROOT, env={**os.environ, "FLMN_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=None if limit is None else lambda: file_size_limit(limit))


def test_evaluate_refuses_a_json_it_cannot_write_before_evaluating(data_dir, omniglot, tmp_path):
    started = time.time()
    refused = evaluate(data_dir, "--json", "/proc/flmn-result.json")
    assert refused.returncode == 2 and "no file can be written in /proc" in refused.stderr
    assert "instance" not in refused.stdout and time.time() - started < 60  # refused at once, nothing computed
    failed = evaluate(data_dir, "--json", tmp_path / "result.json", limit=512)  # the file, not its folder, fails
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert "could not write" in failed.stderr and "the result is printed above" in failed.stderr
    assert "overall" in failed.stdout and not (tmp_path / "result.json").exists()
