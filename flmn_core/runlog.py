"""A training run's log: one JSON record per line in log.jsonl, appended as the run goes.

Records are {"kind": "train" | "validation", "episode": int, ...}. This module is the one place that
writes, reads and rewinds them (the run, `--resume`, publish and the report all go through it).
"""

import json
from pathlib import Path

from .files import atomic_text


def append(path, record):
    """Append one record."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read(path, kind=None):
    """The records of a log (of one kind, if given), skipping a line a killed process cut short."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("episode"), int) and kind in (None, record.get("kind")):
            records.append(record)
    return records


def write(path, records):
    """Replace a log with these records, atomically."""
    atomic_text(path, "".join(json.dumps(record) + "\n" for record in records))


def rewind(path, episode):
    """Keep the records up to the episode a run resumes from: the resumed run redoes and logs the rest."""
    if Path(path).exists():
        write(path, [r for r in read(path) if r["episode"] <= episode])
