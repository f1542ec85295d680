"""Atomic file writes: a crash or a full disk never leaves a half-written file under the final name."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"  # atomic_open writes to .<name>.<random>.tmp beside the final file


@contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside path for writing; on success flush it to disk and rename it over
    path, on any error delete it (path keeps its old content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the final file should read like any other
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_text(path, text):
    """Write text to path atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def remove_temporaries(folder, names):
    """Delete the temporary files that a killed process left behind while writing these file names into
    folder (atomic_open's .<name>.<random>.tmp), and no others. Only call it when no other process is
    writing these files."""
    for name in names:
        for path in Path(folder).glob(f".{glob_escape(name)}.*{TEMPORARY_SUFFIX}"):
            path.unlink(missing_ok=True)


def glob_escape(name):
    """name with the characters glob treats specially made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
