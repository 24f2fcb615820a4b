"""Reading a run's metrics: `metrics.jsonl`, one JSON object per line, each with a "step".

    records = load_metrics("runs/x")          # [{"step": 100, "eval/return": -1200.0, ...}, ...]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of `<run_dir>/metrics.jsonl`; a line cut short by a killed run is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{run_dir} has no metrics.jsonl: pass a run folder written by train.py or pretrain.py.")
    return read_metrics(path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (dicts with a "step"); a line cut short by a killed run is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records
