"""Replay memory per transition and sampling speed.

    python scripts/bench_replay.py [capacity=100000] [image_size=64]

Fills a `SequenceReplay` to capacity with 64x64 frames from 4 interleaved envs, then measures:
bytes per transition (storage tensors, and the process's resident-memory growth), time to add one
row per env, and time to sample a (B, T) batch right after a write (the fragmented slice index is
rebuilt after each write, so this is the cost the training loop pays). Writes
docs/results/bench_replay.json and refreshes the README table.
"""

from __future__ import annotations

import resource
import sys
import tempfile

import numpy as np
import torch

from worldmodel.config import parse_keys
from worldmodel.replay import SequenceReplay

sys.path.insert(0, __import__("os").path.dirname(__file__))
import results  # noqa: E402

KEYS = {
    "capacity": (int, 100_000, "replay capacity in transitions (filled to it)"),
    "image_size": (int, 64, "frame height and width in pixels"),
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def fill(rb: SequenceReplay, rows: int, chunk_envs: int) -> None:
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (chunk_envs, *rb.obs_shape), dtype=np.uint8)
    t = np.zeros(chunk_envs, int)
    for _ in range(rows // chunk_envs):
        rb.add(obs, rng.uniform(-1, 1, (chunk_envs, rb.action_dim)), np.ones(chunk_envs), np.zeros(chunk_envs),
               np.zeros(chunk_envs), t % 500 == 0, np.zeros((chunk_envs, rb.state_dim), np.float32))
        t += 1


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_replay.py")
    capacity = args["capacity"]
    size = args["image_size"]
    envs = 4
    raw, rows = {}, []
    for where in ("ram", "disk"):
        entry = {}
        for b, t in ((16, 16), (64, 32)):
            scratch = tempfile.mkdtemp() if where == "disk" else None
            before = rss_bytes()
            rb = SequenceReplay(capacity, t, (3, size, size), action_dim=1, num_envs=envs, state_dim=3,
                                scratch_dir=scratch)
            fill(rb, capacity, envs)
            grown = rss_bytes() - before
            rng = np.random.default_rng(1)
            one = (rng.integers(0, 255, (envs, 3, size, size), dtype=np.uint8), np.zeros((envs, 1)), np.zeros(envs),
                   np.zeros(envs), np.zeros(envs), np.zeros(envs), np.zeros((envs, 3), np.float32))
            entry.setdefault("bytes_per_transition", rb.bytes_per_transition)
            entry.setdefault("rss_growth_per_transition", grown / capacity)
            entry.setdefault("add_ms", 1000 * results.median_seconds(lambda: rb.add(*one), 30))
            entry[f"add_then_sample_ms_{b}x{t}"] = 1000 * results.median_seconds(lambda: (rb.add(*one), rb.sample(b)), 30)
            rb = None  # free the storage before the next one is filled
        raw[where] = entry
        print(where, {k: round(v, 2) for k, v in entry.items()}, flush=True)
        rows.append([f"{where}, {capacity:,} x {size}x{size}", f"{entry['bytes_per_transition']:,}",
                     f"{entry['rss_growth_per_transition']:,.0f}" if where == "ram" else "(page cache)",
                     f"{entry['add_ms']:.2f}", f"{entry['add_then_sample_ms_16x16']:.1f}",
                     f"{entry['add_then_sample_ms_64x32']:.1f}"])
    cols = ["storage", "bytes / transition", "RSS growth / transition", "add (4 envs) ms",
            "add + sample 16x16 ms", "add + sample 64x32 ms"]
    results.save("bench_replay", {"columns": cols, "rows": rows}, raw, results.command_line())


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1:])
