"""A training run's log: one JSON record per line in log.jsonl, appended as the run goes.

Records are {"kind": "train" | "validation" | "warm_start", "episode": int, ...} (a warm start marks where
a run continued a checkpoint with a fresh optimizer). This module is the one place that
writes, reads, rewinds and trims them (the run, `--resume`, publish and the report all go through it).
"""

import json
import math
from pathlib import Path

from flmn_core.files import atomic_text

# What a shipped log keeps of each record: what the training curves, the model cards and the app read.
SHIPPED_FIELDS = ("kind", "episode", "loss", "accuracy", "overall_accuracy", "retrieval", "lr", "cpu_seconds")
SHIPPED_BUDGET = 200_000  # bytes of a shipped log


def line(record):
    """One record as a line of the log."""
    return json.dumps(record) + "\n"


def append(path, record):
    """Append one record."""
    with open(path, "a") as f:
        f.write(line(record))


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
    atomic_text(path, "".join(line(record) for record in records))


def rewind(path, episode):
    """Keep the records up to the episode a run resumes from: the resumed run redoes and logs the rest."""
    if Path(path).exists():
        write(path, [r for r in read(path) if r["episode"] <= episode])


def rounded(key, value):
    """A logged value made short: floats to 4 decimals, the learning rate to 4 significant digits (4
    decimals would turn 5e-5 into 1e-4); inside lists and dicts too."""
    if isinstance(value, list):
        return [rounded(key, v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(k, v) for k, v in value.items()}
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    if key == "lr":
        return round(value, 3 - math.floor(math.log10(abs(value))))
    return round(value, 4)


def trimmed(records, budget=SHIPPED_BUDGET):
    """A log cut for shipping -> records: SHIPPED_FIELDS only, rounded; when that is larger than budget
    bytes, every k-th training record (with the smallest k that fits; all validation records and the
    last training record stay)."""
    short = [{key: rounded(key, record[key]) for key in SHIPPED_FIELDS if key in record} for record in records]
    step = 1
    while True:
        train_rows = [i for i, r in enumerate(short) if r.get("kind") == "train"]
        keep = set(train_rows[::step]) | set(train_rows[-1:])
        thinned = [r for i, r in enumerate(short) if r.get("kind") != "train" or i in keep]
        if sum(len(line(r).encode()) for r in thinned) <= budget or len(keep) <= 1:
            return thinned
        step += 1
