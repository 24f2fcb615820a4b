"""Planning latency: milliseconds per action for MPPI and CEM at each preset, fp32 vs bf16, against
TorchRL's `MPPIPlanner` at the same latent size, width, horizon, samples, iterations and elites.

    python scripts/bench_planner.py [presets=debug,cpu,gpu] [calls=50] [device=cpu] [compiled=true]
    python scripts/bench_planner.py presets=cpu,cpu+samples=128    # a preset with overrides, as its own row

For each preset: `act` = a full agent step (stack the frame history, encode, plan, warm start),
`plan` = the planner alone from a latent, both with the preset's policy prior; `plan, no prior` is
the same arithmetic TorchRL's planner does (no policy proposals), the row to compare with it.
`act, compile=true` is the agent step with the planner's rollouts torch.compiled (what
`compile=true` gives a training run), timed after the compile; `compiled=false` skips it.
TorchRL's planner rolls out a `ModelBasedEnvBase` whose dynamics, reward and value are separate
MLPs of the same width; ours predicts the next latent and the reward with one network (see
`worldmodel/dynamics.py`), which is part of why it is faster. Writes docs/results/bench_planner.json
and refreshes the README table. Run it alone: other jobs on the same cores distort it.
"""

from __future__ import annotations

import sys

import torch

from agents.analysis import results
from agents.analysis.bench.planner import COLUMNS, planning_latency, row, summary
from agents.training.assembly import build_agent, build_model
from worldmodel.actions import ActionSpec
from worldmodel.cli import parse_keys
from worldmodel.config import Config

KEYS = {
    "presets": (str, "debug,cpu,gpu", "presets to time, comma-separated; preset+key=value adds config overrides"),
    "calls": (int, 50, "timed calls per figure (the median is reported)"),
    "device": (str, "cpu", "torch device to plan on (cpu, cuda)"),
    "compiled": (bool, True, "also time the agent step with compile=true (false: skip it)"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_planner.py")
    device = torch.device(args["device"])
    raw, rows = [], []
    for preset in args["presets"].split(","):
        for precision in ("fp32", "bf16"):
            base, overrides = results.split_preset(preset)
            cfg = Config.from_preset(base, **overrides, precision=precision, device=device.type)
            torch.manual_seed(0)
            model = build_model(cfg, ActionSpec("continuous", 1), device)
            model.eval()
            agent = build_agent(cfg, model, None, device, seed=0)  # acts only: no trainer
            compiled = build_agent(cfg.replace(compile=True), model, None, device, seed=0) if args["compiled"] else None
            entry = {"preset": preset, **planning_latency(agent, compiled, args["calls"])}
            raw.append(entry)
            print(summary(entry), flush=True)
            rows.append(row(entry))
    results.save("bench_planner", {"columns": COLUMNS, "rows": rows}, {"cases": raw}, results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
