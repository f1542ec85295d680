"""One training process at a time in a run folder.

`flmn train` holds an exclusive lock (flock) on <run folder>/.lock from before it looks at the folder until
it exits, so that a second run started into the same --out, or a --resume while the run still goes, is
refused instead of mixing two runs' checkpoints and logs. The kernel drops the lock when the process ends in
any way (kill -9 included), so a crash can never leave the folder locked; the file only names the last
holder's process id for the message.
"""

import errno
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".lock"


class RunFolderBusy(Exception):
    """The run folder is held by another process, or cannot be made or locked; the message says which."""


def hold_run_folder(out):
    """Make the run folder if needed and lock it for this process -> the open lock file (keep it: closing
    it, or exiting, releases the lock). Raises RunFolderBusy when another process holds it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderBusy(f"--out {out} is a file; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunFolderBusy(f"cannot use {out} as the run folder: {error.strerror or error}") from error
    lock = os.fdopen(descriptor, "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = lock.read(32).strip()
        lock.close()
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise RunFolderBusy(f"cannot lock {out / LOCK_NAME}: {error.strerror or error}") from error
        raise RunFolderBusy(f"{out} is in use by another training process{f' (pid {holder})' if holder else ''}: "
                            "wait for it to finish or stop it, or choose another --out") from error
    try:
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
    except OSError:  # a full disk: the process id only helps another process's message; the lock holds
        pass
    return lock
