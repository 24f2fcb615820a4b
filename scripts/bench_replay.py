"""Replay memory per transition and sampling speed.

    python scripts/bench_replay.py [capacity=100000] [image_size=64]

Fills a `SequenceReplay` to capacity with 64x64 frames from 4 interleaved envs, then measures:
bytes per transition (storage tensors, and the process's resident-memory growth), time to add one
row per env, and time to sample a (B, T) batch right after a write (the fragmented slice index is
rebuilt after each write, so this is the cost the training loop pays). Writes
docs/results/bench_replay.json and refreshes the README table.
"""

from __future__ import annotations

import sys

import torch

from agents.analysis import results
from agents.analysis.bench.replay import COLUMNS, replay_costs, replay_row
from worldmodel.cli import parse_keys

KEYS = {
    "capacity": (int, 100_000, "replay capacity in transitions (filled to it)"),
    "image_size": (int, 64, "frame height and width in pixels"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_replay.py")
    capacity, size = args["capacity"], args["image_size"]
    raw, rows = {}, []
    for where in ("ram", "disk"):
        entry = replay_costs(capacity, size, on_disk=where == "disk")
        raw[where] = entry
        print(where, {k: round(v, 2) for k, v in entry.items()}, flush=True)
        rows.append(replay_row(entry, capacity, size, on_disk=where == "disk"))
    results.save("bench_replay", {"columns": COLUMNS, "rows": rows}, raw, results.command_line())


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1:])
