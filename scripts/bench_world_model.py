"""World-model update rate and peak memory: ours per objective, fp32 vs bf16, against TorchRL's Dreamer.

    python scripts/bench_world_model.py [preset=cpu] [updates=20] [device=cpu]

Every case runs in its own subprocess (so peak resident memory is its own) at the preset's batch
size B, sequence length T and image size: ours for objective masked | contrastive | both, and TorchRL's
`DreamerModelLoss` with its RSSM modules at its default sizes (see scripts/torchrl_reference.py)
on the same B x T batch of 64x64 frames. One update = loss forward + backward + Adam step.
Prints updates/s, the ratio to Dreamer at the same precision, and bf16 over fp32; writes
docs/results/bench_world_model.json and refreshes the README table. Run it alone: other jobs on
the same cores distort it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import torch

from worldmodel.config import parse_keys

sys.path.insert(0, os.path.dirname(__file__))
import results  # noqa: E402

KEYS = {
    "preset": (str, "cpu", "config preset: batch size, sequence length, image size, model sizes"),
    "updates": (int, 20, "timed updates per case (the median is reported)"),
    "device": (str, "cpu", "torch device (cpu, cuda; fp16 is timed on cuda only)"),
    "one": (str, "", "internal: run the single case kind:objective:precision and print its JSON"),
}


def run_one(kind: str, objective: str, precision: str, preset: str, updates: int, device: str) -> dict:
    from worldmodel.config import Config

    cfg = Config.from_preset(preset, objective=objective if kind == "ours" else "both", precision=precision,
                             device=device)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    if kind == "ours":
        from worldmodel.model import WorldModel
        from worldmodel.replay import SequenceReplay
        from worldmodel.trainer import WorldModelTrainer

        rng = np.random.default_rng(0)
        replay = SequenceReplay(2_000, cfg.sample_len, (3, cfg.image_size, cfg.image_size), 1)
        for t in range(400):
            replay.add(rng.integers(0, 255, (1, 3, cfg.image_size, cfg.image_size), dtype=np.uint8),
                       rng.uniform(-1, 1, (1, 1)), rng.normal(size=1), np.zeros(1), np.zeros(1), np.array([t % 200 == 0]))
        model = WorldModel(cfg, 1).to(dev)
        trainer = WorldModelTrainer(model, dev, precision, cfg.lr, cfg.grad_clip)
        batch = replay.sample(cfg.batch_size)
        seconds = results.median_seconds(lambda: trainer.update(batch), updates, 3, sync)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        name = f"ours ({objective}, {cfg.encoder})"
    else:
        from torchrl_reference import dreamer_world_model_step

        step, info = dreamer_world_model_step(cfg.batch_size, cfg.seq_len, cfg.image_size, 1, precision, device)
        seconds = results.median_seconds(step, updates, 3, sync)
        params = info["params"]
        name = "TorchRL DreamerModelLoss"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    return {"name": name, "kind": kind, "objective": objective, "precision": precision, "seconds": seconds,
            "updates_per_second": 1.0 / seconds, "peak_memory_mb": peak / 2**20, "params": params,
            "batch": [cfg.batch_size, cfg.seq_len], "image_size": cfg.image_size}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_world_model.py")
    preset, updates, device = args["preset"], args["updates"], args["device"]
    if args["one"]:
        kind, objective, precision = args["one"].split(":")
        print(json.dumps(run_one(kind, objective, precision, preset, updates, device)))
        return
    precisions = ["fp32", "bf16"] + (["fp16"] if device.startswith("cuda") else [])
    cases = [("torchrl", "-", p) for p in precisions]
    cases += [("ours", o, p) for o in ("masked", "contrastive", "both") for p in precisions]
    raw = []
    for kind, objective, precision in cases:
        if kind == "torchrl" and precision == "fp16":
            continue
        cmd = [sys.executable, __file__, f"one={kind}:{objective}:{precision}", f"preset={preset}",
               f"updates={updates}", f"device={device}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"case {kind}:{objective}:{precision} failed:\n{proc.stderr[-2000:]}")
        raw.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = raw[-1]
        print(f"{r['name']:<32} {precision}: {r['updates_per_second']:6.2f} updates/s "
              f"({r['seconds'] * 1000:.0f} ms), peak {r['peak_memory_mb']:.0f} MB", flush=True)

    reference = {r["precision"]: r["updates_per_second"] for r in raw if r["kind"] == "torchrl"}
    ours_fp32 = {r["objective"]: r["updates_per_second"] for r in raw if r["kind"] == "ours" and r["precision"] == "fp32"}
    rows = []
    for r in raw:
        vs_dreamer = r["updates_per_second"] / reference.get(r["precision"], reference["fp32"])
        vs_fp32 = r["updates_per_second"] / ours_fp32[r["objective"]] if r["kind"] == "ours" else None
        r["vs_dreamer"], r["vs_own_fp32"] = vs_dreamer, vs_fp32
        if r["kind"] == "ours":
            print(f"{r['name']} {r['precision']}: {vs_dreamer:.2f}x Dreamer's update rate, {vs_fp32:.2f}x own fp32")
        rows.append([r["name"], r["precision"], f"{r['params'] / 1e6:.2f}M", f"{r['updates_per_second']:.2f}",
                     f"{r['seconds'] * 1000:.0f}", f"{r['peak_memory_mb']:,.0f}",
                     f"{vs_dreamer:.2f}x", "-" if vs_fp32 is None else f"{vs_fp32:.2f}x"])
    b, t = raw[0]["batch"]
    cols = ["model", "precision", "params", "updates/s", "ms/update", "peak MB", "vs Dreamer (same precision)",
            "vs own fp32"]
    results.save("bench_world_model", {"columns": cols, "rows": rows, "batch": f"{b}x{t}"}, {"cases": raw},
                 results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
