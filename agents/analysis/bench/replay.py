"""Replay memory per transition and sampling speed (`scripts/bench_replay.py`).

    entry = replay_costs(100_000, 64, on_disk=False)     # bytes, RSS growth, add and add+sample ms
    row = replay_row(entry, 100_000, 64, on_disk=False)

A `SequenceReplay` is filled to capacity with frames from `ENVS` interleaved envs; then one row
per env is added, alone and followed by a (B, T) sample: the fragmented slice index is rebuilt
after each write, so this is the cost the training loop pays.
"""

from __future__ import annotations

import resource
import tempfile

import numpy as np

from agents.analysis.results import median_seconds
from worldmodel.replay import SequenceReplay

ENVS = 4
"""Envs writing into the replay side by side."""
BATCHES = ((16, 16), (64, 32))
"""(B, T) of the sampled batches."""
COLUMNS = ["storage", "bytes / transition", "RSS growth / transition", "add (4 envs) ms",
           "add + sample 16x16 ms", "add + sample 64x32 ms"]


def rss_bytes() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def fill(rb: SequenceReplay, rows: int, chunk_envs: int) -> None:
    """Write `rows` transitions, `chunk_envs` envs at a time (one fixed random frame; episodes of 500)."""
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (chunk_envs, *rb.obs_shape), dtype=np.uint8)
    t = np.zeros(chunk_envs, int)
    for _ in range(rows // chunk_envs):
        rb.add(obs, rng.uniform(-1, 1, (chunk_envs, rb.action_dim)), np.ones(chunk_envs), np.zeros(chunk_envs),
               np.zeros(chunk_envs), t % 500 == 0, np.zeros((chunk_envs, rb.state_dim), np.float32))
        t += 1


def replay_costs(capacity: int, size: int, on_disk: bool) -> dict[str, float]:
    """Bytes per transition (storage, and resident-memory growth while filling), ms to add one row
    per env, and ms to add then sample each of `BATCHES`, for a replay of `capacity` transitions of
    `size`x`size` frames in RAM or memory-mapped on disk."""
    entry = {}
    for b, t in BATCHES:
        scratch = tempfile.mkdtemp() if on_disk else None
        before = rss_bytes()
        rb = SequenceReplay(capacity, t, (3, size, size), action_dim=1, num_envs=ENVS, state_dim=3,
                            scratch_dir=scratch)
        fill(rb, capacity, ENVS)
        grown = rss_bytes() - before
        rng = np.random.default_rng(1)
        one = (rng.integers(0, 255, (ENVS, 3, size, size), dtype=np.uint8), np.zeros((ENVS, 1)), np.zeros(ENVS),
               np.zeros(ENVS), np.zeros(ENVS), np.zeros(ENVS), np.zeros((ENVS, 3), np.float32))
        entry.setdefault("bytes_per_transition", rb.bytes_per_transition)
        entry.setdefault("rss_growth_per_transition", grown / capacity)
        entry.setdefault("add_ms", 1000 * median_seconds(lambda: rb.add(*one), 30))
        entry[f"add_then_sample_ms_{b}x{t}"] = 1000 * median_seconds(lambda: (rb.add(*one), rb.sample(b)), 30)
        rb = None  # free the storage before the next one is filled
    return entry


def replay_row(entry: dict[str, float], capacity: int, size: int, on_disk: bool) -> list[str]:
    """The README row of one `replay_costs` entry (`COLUMNS`)."""
    where = "disk" if on_disk else "ram"
    return [f"{where}, {capacity:,} x {size}x{size}", f"{entry['bytes_per_transition']:,}",
            "(page cache)" if on_disk else f"{entry['rss_growth_per_transition']:,.0f}",
            f"{entry['add_ms']:.2f}", f"{entry['add_then_sample_ms_16x16']:.1f}",
            f"{entry['add_then_sample_ms_64x32']:.1f}"]
