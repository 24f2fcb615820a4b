"""World-model update rate and peak memory (`scripts/bench_world_model.py`): ours per objective
against TorchRL's Dreamer, one case per process so that each peak is its own.

    record = update_case(cfg, trainer, replay, updates=20)   # ours: the trainer's update on a replay batch
    record = dreamer_case(cfg, updates=20)                   # TorchRL's DreamerModelLoss at its default sizes
    table = compare(records)                                 # ratios to Dreamer and to our own fp32

One update = loss forward + backward + Adam step, on one fixed batch of the config's B x T.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from agents.analysis.results import device_sync, median_seconds, peak_memory_mb
from agents.analysis.torchrl_reference import dreamer_world_model_step
from worldmodel.config import Config

if TYPE_CHECKING:  # only our cases build these: TorchRL's case process does not import them
    from worldmodel.replay import SequenceReplay
    from worldmodel.trainer import WorldModelTrainer

COLUMNS = ["model", "precision", "params", "updates/s", "ms/update", "peak MB", "vs Dreamer (same precision)",
           "vs own fp32"]


def cases(device: str) -> list[tuple[str, str, str]]:
    """(kind, objective, precision) of every case: TorchRL's Dreamer ("torchrl", "-") at fp32 and
    bf16, then ours per objective at fp32, bf16 and, on CUDA, fp16."""
    precisions = ["fp32", "bf16"] + (["fp16"] if device.startswith("cuda") else [])
    out = [("torchrl", "-", p) for p in precisions if p != "fp16"]
    return out + [("ours", o, p) for o in ("masked", "contrastive", "both") for p in precisions]


def fill_random(replay: SequenceReplay, rows: int = 400, episode_len: int = 200) -> None:
    """Write `rows` transitions of random frames, actions and rewards (episodes of `episode_len`)."""
    rng = np.random.default_rng(0)
    for t in range(rows):
        replay.add(rng.integers(0, 255, (1, *replay.obs_shape), dtype=np.uint8),
                   rng.uniform(-1, 1, (1, replay.action_dim)), rng.normal(size=1), np.zeros(1), np.zeros(1),
                   np.array([t % episode_len == 0]))


def update_case(cfg: Config, trainer: WorldModelTrainer, replay: SequenceReplay, updates: int) -> dict:
    """Our update, timed over `updates` calls on one batch of `replay`, and this process's peak memory."""
    sync = device_sync(trainer.device)
    batch = replay.sample(cfg.batch_size)
    seconds = median_seconds(lambda: trainer.update(batch), updates, 3, sync)
    params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return _record(cfg, f"ours ({cfg.objective}, {cfg.encoder})", "ours", cfg.objective, seconds, params)


def dreamer_case(cfg: Config, updates: int) -> dict:
    """TorchRL's Dreamer world-model update at the config's B x T, image size and precision."""
    step, info = dreamer_world_model_step(cfg.batch_size, cfg.seq_len, cfg.image_size, 1, cfg.precision, cfg.device)
    seconds = median_seconds(step, updates, 3, device_sync(torch.device(cfg.device)))
    return _record(cfg, "TorchRL DreamerModelLoss", "torchrl", "-", seconds, info["params"])


def _record(cfg: Config, name: str, kind: str, objective: str, seconds: float, params: int) -> dict:
    return {"name": name, "kind": kind, "objective": objective, "precision": cfg.precision, "seconds": seconds,
            "updates_per_second": 1.0 / seconds, "peak_memory_mb": peak_memory_mb(torch.device(cfg.device)),
            "params": params, "batch": [cfg.batch_size, cfg.seq_len], "image_size": cfg.image_size}


def summary(record: dict) -> str:
    """One line of progress for a finished case."""
    return (f"{record['name']:<32} {record['precision']}: {record['updates_per_second']:6.2f} updates/s "
            f"({record['seconds'] * 1000:.0f} ms), peak {record['peak_memory_mb']:.0f} MB")


def compare(records: list[dict]) -> dict:
    """The README table of all cases; each record gains "vs_dreamer" (its update rate over Dreamer's
    at the same precision, fp32's where Dreamer has none) and "vs_own_fp32" (ours: over the same
    objective at fp32; None for Dreamer)."""
    reference = {r["precision"]: r["updates_per_second"] for r in records if r["kind"] == "torchrl"}
    ours_fp32 = {r["objective"]: r["updates_per_second"] for r in records
                 if r["kind"] == "ours" and r["precision"] == "fp32"}
    rows = []
    for r in records:
        vs_dreamer = r["updates_per_second"] / reference.get(r["precision"], reference["fp32"])
        vs_fp32 = r["updates_per_second"] / ours_fp32[r["objective"]] if r["kind"] == "ours" else None
        r["vs_dreamer"], r["vs_own_fp32"] = vs_dreamer, vs_fp32
        rows.append([r["name"], r["precision"], f"{r['params'] / 1e6:.2f}M", f"{r['updates_per_second']:.2f}",
                     f"{r['seconds'] * 1000:.0f}", f"{r['peak_memory_mb']:,.0f}",
                     f"{vs_dreamer:.2f}x", "-" if vs_fp32 is None else f"{vs_fp32:.2f}x"])
    b, t = records[0]["batch"]
    return {"columns": COLUMNS, "rows": rows, "batch": f"{b}x{t}"}


def ratios(record: dict) -> str:
    """What `compare` found for one of our cases, as a line."""
    return (f"{record['name']} {record['precision']}: {record['vs_dreamer']:.2f}x Dreamer's update rate, "
            f"{record['vs_own_fp32']:.2f}x own fp32")
