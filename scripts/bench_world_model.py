"""World-model update rate and peak memory: ours per objective, fp32 vs bf16, against TorchRL's Dreamer.

    python scripts/bench_world_model.py [preset=cpu] [updates=20] [device=cpu]

Every case runs in its own subprocess (so peak resident memory is its own) at the preset's batch
size B, sequence length T and image size: ours for objective masked | contrastive | both, and TorchRL's
`DreamerModelLoss` with its RSSM modules at its default sizes (see agents/analysis/torchrl_reference.py)
on the same B x T batch of 64x64 frames. One update = loss forward + backward + Adam step.
Prints updates/s, the ratio to Dreamer at the same precision, and bf16 over fp32; writes
docs/results/bench_world_model.json and refreshes the README table. Run it alone: other jobs on
the same cores distort it.
"""

from __future__ import annotations

import json
import sys

import torch

from agents.analysis import results
from agents.analysis.bench import world_model
from worldmodel.cli import parse_keys

KEYS = {
    "preset": (str, "cpu", "config preset: batch size, sequence length, image size, model sizes"),
    "updates": (int, 20, "timed updates per case (the median is reported)"),
    "device": (str, "cpu", "torch device (cpu, cuda; fp16 is timed on cuda only)"),
    "one": (str, "", "internal: run the single case kind:objective:precision and print its JSON"),
}


def run_one(kind: str, objective: str, precision: str, preset: str, updates: int, device: str) -> dict:
    """One case, in this process; only what it needs is imported, so the peak memory is its own."""
    from worldmodel.config import Config

    cfg = Config.from_preset(preset, objective=objective if kind == "ours" else "both", precision=precision,
                             device=device)
    torch.manual_seed(0)
    if kind != "ours":
        return world_model.dreamer_case(cfg, updates)
    from agents.training.assembly import build_model, build_replay, build_trainer
    from worldmodel.actions import ActionSpec

    dev, spec = torch.device(device), ActionSpec("continuous", 1)
    replay_cfg = cfg.replace(buffer_size=2_000, num_envs=1, buffer_on_disk=False, replay_device="cpu")
    replay = build_replay(replay_cfg, spec, 0, torch.device("cpu"))
    world_model.fill_random(replay)
    model = build_model(cfg, spec, dev)
    trainer = build_trainer(cfg, model, dev)
    return world_model.update_case(cfg, trainer, replay, updates)


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_world_model.py")
    preset, updates, device = args["preset"], args["updates"], args["device"]
    if args["one"]:
        kind, objective, precision = args["one"].split(":")
        print(json.dumps(run_one(kind, objective, precision, preset, updates, device)))
        return
    raw = []
    for kind, objective, precision in world_model.cases(device):
        what = f"{kind}:{objective}:{precision}"
        cmd = [sys.executable, __file__, f"one={what}", f"preset={preset}", f"updates={updates}", f"device={device}"]
        raw.append(results.run_json(cmd, what))
        print(world_model.summary(raw[-1]), flush=True)
    table = world_model.compare(raw)
    for r in raw:
        if r["kind"] == "ours":
            print(world_model.ratios(r))
    results.save("bench_world_model", table, {"cases": raw}, results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
