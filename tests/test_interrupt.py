"""Training survives interruptions: SIGTERM and Ctrl-C save and exit cleanly, SIGKILL (mid-step or in the
middle of writing a checkpoint) loses at most one save interval and leaves nothing that breaks `--resume`,
and a NaN loss stops the run with a clear message while keeping a good checkpoint.

Every run is a real `flmn train` subprocess (or a small driver around flmn_core.training.train.main
when the test must control the moment of failure) on the real Omniglot data, at tiny model sizes.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import flmn_core

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4  # episodes per step: a checkpoint's step is always a multiple of it
TINY = ["--controller-size", "16", "--memory-rows", "8", "--word-size", "8", "--batch-size", str(BATCH),
        "--log-every", str(BATCH), "--val-every", "10000", "--val-episodes", "8", "--threads", "1"]
FOREVER = ["--episodes", "1000000"]  # longer than any test waits: the run only ends when stopped
SLACK_SECONDS = 5.0  # a step, a log line and a checkpoint write at tiny sizes, on a busy 2-core machine

# Runs flmn_core.training.train.main(argv) with the 2nd write of last.pt stopped half-way: it writes half the bytes
# to the temporary file, creates the marker file and hangs there until the test kills it.
HANG_IN_SECOND_WRITE = """
import io, os, sys, time
from pathlib import Path
import torch
from flmn_core.model import checkpoint
from flmn_core.training import train

marker, argv = Path(sys.argv[1]), sys.argv[2:]
real_save, writes = checkpoint.atomic_torch_save, []

def hang_in_second_write(obj, path):
    if Path(path).name == "last.pt":
        writes.append(obj["step"])
        if len(writes) == 2:
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            with checkpoint.atomic_open(path) as f:
                f.write(buffer.getvalue()[: buffer.tell() // 2])
                f.flush()
                os.fsync(f.fileno())
                marker.touch()
                time.sleep(600)
    real_save(obj, path)

checkpoint.atomic_torch_save = hang_in_second_write
train.main(argv)
"""

# Runs flmn_core.training.train.main(argv) with an infinite learning rate from episode sys.argv[1] on: the next step
# makes the weights non-finite and the step after it has a NaN loss.
EXPLODE_AT = """
import math, sys
from flmn_core.training import train

explode_at, argv = int(sys.argv[1]), sys.argv[2:]
normal_rate = train.learning_rate
train.learning_rate = lambda args, episode: math.inf if episode >= explode_at else normal_rate(args, episode)
train.main(argv)
"""


def tool_env(data_dir):
    return {**os.environ, "FLMN_DATA_DIR": str(data_dir)}


def run_python(data_dir, *args, timeout=300):
    """Run `python args` from the repository root to the end -> CompletedProcess (text output)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=tool_env(data_dir),
                          capture_output=True, text=True, timeout=timeout)


@contextmanager
def running(data_dir, workdir, *args):
    """Start `python args` from the repository root, output to workdir/stdout.txt and stderr.txt -> Popen;
    killed on leaving the block if still running, so no test leaves a process behind."""
    with open(workdir / "stdout.txt", "w") as stdout, open(workdir / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=tool_env(data_dir),
                                   stdout=stdout, stderr=stderr)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def wait_until(condition, process, what, timeout=180):
    """Poll condition() until true; fail if the process ends first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the process exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def log_records(folder):
    """The records of folder/log.jsonl; none when it does not exist yet."""
    path = folder / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def train_episodes(folder):
    """The episodes of the training log lines, in file order."""
    return [record["episode"] for record in log_records(folder) if record["kind"] == "train"]


def temporary_files(folder):
    """Leftovers of interrupted atomic writes (flmn_core.files names them .<name>.<random>.tmp)."""
    return sorted(path.name for path in folder.glob(".*.tmp"))


def processes_naming(text):
    """The pids of running processes whose command line contains text."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            pass
    return found


def saved_step(path):
    """The step of a checkpoint file, or None while there is none."""
    return flmn_core.load_checkpoint(path)["step"] if path.exists() else None


def resume(data_dir, out, episodes):
    """`train --resume --episodes N` to completion; asserts it succeeded -> CompletedProcess."""
    result = run_python(data_dir, "-m", "flmn_core", "train", "--resume", "--episodes", episodes, "--threads", 1,
                        "--out", out)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("sampling", [[], ["--sample-ahead"]], ids=["in-place", "sample-ahead"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_and_exits_cleanly(data_dir, tmp_path, signum, sampling):
    """Also with the episodes sampled in a second process: the signal stops the training process, which saves
    and stops the sampling process (a fork: its command line names the run folder too)."""
    out = tmp_path / "run"
    # Saves are an hour apart, so only the signal can have written last.pt.
    with running(data_dir, tmp_path, "-m", "flmn_core", "train", *TINY, *FOREVER, *sampling, "--save-minutes", 60,
                 "--out", out) as process:
        wait_until(lambda: len(train_episodes(out)) >= 2, process, "log lines")
        assert not (out / "last.pt").exists()
        process.send_signal(signum)
        returncode = process.wait(timeout=60)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert returncode == 0, stderr
    stopped = re.search(r"stopped at episode (\d+); saved (\S+) \(continue with --resume\)", stderr)
    assert stopped, stderr
    episode = int(stopped[1])
    assert Path(stopped[2]) == out / "last.pt" and "Traceback" not in stderr
    assert saved_step(out / "last.pt") == episode >= train_episodes(out)[-1]
    assert processes_naming(str(out)) == [], "a process of the run outlived it"

    resume(data_dir, out, episode + 2 * BATCH)
    assert saved_step(out / "last.pt") == episode + 2 * BATCH
    assert train_episodes(out)[-1] == episode + 2 * BATCH


@pytest.fixture(scope="module")
def killed_mid_training(data_dir, tmp_path_factory):
    """A run saving every 0.6 s, killed with SIGKILL once it has saved twice and logged a step past its last
    save, then resumed for 8 episodes -> dict: folder, newest step seen before the kill, seconds from the
    last save to the kill, last.pt's step after the kill, episodes logged before the resume, the resume."""
    workdir = tmp_path_factory.mktemp("sigkill")
    out = workdir / "run"
    seen = set()

    def saved_twice_and_logged_past_it():
        logged, step = train_episodes(out), saved_step(out / "last.pt")
        seen.add(step)
        return len(seen - {None}) >= 2 and logged[-1] > step

    with running(data_dir, workdir, "-m", "flmn_core", "train", *TINY, *FOREVER, "--save-minutes", 0.01,
                 "--out", out) as process:
        wait_until(saved_twice_and_logged_past_it, process, "two saves of last.pt and a log line after them")
        process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        assert process.wait(timeout=60) == -signal.SIGKILL
    facts = {"out": out, "seen": max(seen - {None}), "age": killed_at - (out / "last.pt").stat().st_mtime,
             "step": saved_step(out / "last.pt"), "logged": train_episodes(out)}
    facts["resume"] = resume(data_dir, out, facts["step"] + 2 * BATCH)
    return facts


def test_sigkill_mid_training_loses_at_most_one_save_interval(killed_mid_training):
    facts = killed_mid_training
    assert facts["step"] >= facts["seen"]  # the kill never took back a save that had completed
    assert facts["age"] <= 0.01 * 60 + SLACK_SECONDS
    # Every checkpoint file left by the killed run loads, and resuming went on from last.pt's episode.
    for path in facts["out"].glob("*.pt"):
        flmn_core.load_checkpoint(path)
    assert saved_step(facts["out"] / "last.pt") == facts["step"] + 2 * BATCH


def test_the_log_after_sigkill_and_resume_has_each_episode_once(killed_mid_training):
    """Lines logged after the last save are redone by the resumed run: the log must not hold them twice
    (the training curves of the paper's Figures 3-5 are drawn from it)."""
    episodes = train_episodes(killed_mid_training["out"])
    assert episodes == sorted(set(episodes)), (f"last.pt was at episode {killed_mid_training['step']}, the "
                                               f"killed run had logged up to {killed_mid_training['logged'][-1]}")


@pytest.fixture(scope="module")
def killed_mid_write(data_dir, tmp_path_factory):
    """A run saving last.pt after every step, killed with SIGKILL while half of its 2nd last.pt (episode 8)
    is written, then resumed to episode 16 -> dict: folder, last.pt's step, the temporary files and their
    sizes after the kill, and the resume's result."""
    workdir = tmp_path_factory.mktemp("sigkill-write")
    out, marker = workdir / "run", workdir / "writing"
    with running(data_dir, workdir, "-c", HANG_IN_SECOND_WRITE, marker, *TINY, *FOREVER, "--save-minutes", 0,
                 "--out", out) as process:
        wait_until(marker.exists, process, "half-written checkpoint")
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    facts = {"out": out, "step": saved_step(out / "last.pt"), "temporary": temporary_files(out)}
    facts["sizes"] = [(out / name).stat().st_size for name in facts["temporary"]]
    facts["resume"] = resume(data_dir, out, 4 * BATCH)
    return facts


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_checkpoint(killed_mid_write):
    # The kill did land in the write: half a checkpoint sits in a temporary file beside last.pt ...
    assert killed_mid_write["temporary"] and killed_mid_write["temporary"][0].startswith(".last.pt.")
    assert min(killed_mid_write["sizes"]) > 0
    # ... while last.pt is still the complete 1st save, and resuming from it works.
    assert killed_mid_write["step"] == BATCH
    assert saved_step(killed_mid_write["out"] / "last.pt") == 4 * BATCH


def test_resume_removes_the_half_written_temporary_file(killed_mid_write):
    assert temporary_files(killed_mid_write["out"]) == []


def named_files(message):
    """The checkpoint paths a message mentions."""
    return [Path(name) for name in re.findall(r"(/\S+\.pt)\b", message)]


def test_a_nan_loss_stops_with_a_message_and_keeps_a_good_checkpoint(data_dir, tmp_path):
    out = tmp_path / "run"
    result = run_python(data_dir, "-c", EXPLODE_AT, 10 * BATCH, *TINY, *FOREVER, "--save-minutes", 0, "--out", out)
    assert result.returncode != 0
    assert re.search(r"error: .*\b(nan|inf)\b.*episode \d+", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert all(path.exists() for path in named_files(result.stderr)), result.stderr
    # last.pt holds the last finite weights (from before the infinite step), and the run resumes from them.
    last = flmn_core.load_checkpoint(out / "last.pt")
    assert last["step"] <= 10 * BATCH
    bad = [name for name, weight in last["state_dict"].items() if not torch.isfinite(weight).all()]
    assert not bad, f"last.pt (episode {last['step']}) has non-finite {', '.join(bad)}"
    resume(data_dir, out, last["step"] + 2 * BATCH)


def test_a_nan_loss_before_any_save_names_no_missing_file(data_dir, tmp_path):
    out = tmp_path / "run"
    result = run_python(data_dir, "-c", EXPLODE_AT, 0, *TINY, *FOREVER, "--out", out)  # infinite from the start
    assert result.returncode != 0
    assert re.search(r"error: .*\b(nan|inf)\b.*episode \d+", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    missing = [str(path) for path in named_files(result.stderr) if not path.exists()]
    assert not missing, f"the message points to {missing}, which do not exist: {result.stderr}"
