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

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import results  # noqa: E402

from agents.agent import PlanningAgent  # noqa: E402
from agents.planners import make_planner  # noqa: E402
from worldmodel.actions import ActionSpec  # noqa: E402
from worldmodel.config import Config, parse_keys  # noqa: E402
from worldmodel.model import WorldModel  # noqa: E402

KEYS = {
    "presets": (str, "debug,cpu,gpu", "presets to time, comma-separated; preset+key=value adds config overrides"),
    "calls": (int, 50, "timed calls per figure (the median is reported)"),
    "device": (str, "cpu", "torch device to plan on (cpu, cuda)"),
    "compiled": (bool, True, "also time the agent step with compile=true (false: skip it)"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_planner.py")
    presets = args["presets"].split(",")
    calls, device = args["calls"], torch.device(args["device"])
    compiled = args["compiled"]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    from torchrl_reference import mppi_plan_step

    raw, rows = [], []
    for preset in presets:
        for precision in ("fp32", "bf16"):
            base, overrides = results.split_preset(preset)
            cfg = Config.from_preset(base, **overrides, precision=precision, device=device.type)
            torch.manual_seed(0)
            model = WorldModel(cfg, ActionSpec("continuous", 1)).to(device)
            model.eval()
            agent = PlanningAgent(cfg, model, None, device, seed=0)
            obs = torch.randint(0, 255, (1, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8)
            z = model.encode(agent._mem(1, False).frames.push(obs, torch.ones(1, dtype=torch.bool)).to(device))
            planner = make_planner(cfg, model)
            bare = make_planner(cfg.replace(policy_prior=False), model)
            cem = make_planner(cfg.replace(policy_prior=False, planner="cem"), model)
            g = torch.Generator(device=device).manual_seed(0)
            entry = {
                "preset": preset, "precision": precision, "latent": cfg.latent_dim, "hidden": cfg.hidden_dim,
                "horizon": cfg.horizon, "samples": cfg.samples, "iterations": cfg.iterations, "elites": cfg.elites,
                "act_ms": 1000 * results.median_seconds(lambda: agent.act(obs), calls, 5, sync),
                "plan_ms": 1000 * results.median_seconds(lambda: planner.plan(z, generator=g), calls, 5, sync),
                "plan_no_prior_ms": 1000 * results.median_seconds(lambda: bare.plan(z, generator=g), calls, 5, sync),
                "cem_no_prior_ms": 1000 * results.median_seconds(lambda: cem.plan(z, generator=g), calls, 5, sync),
            }
            entry["act_compiled_ms"] = None
            if compiled:
                fast = PlanningAgent(cfg.replace(compile=True), model, None, device, seed=0)
                fast.act(obs)  # compiles
                entry["act_compiled_ms"] = 1000 * results.median_seconds(lambda: fast.act(obs), calls, 5, sync)
            step, _ = mppi_plan_step(cfg.latent_dim, cfg.hidden_dim, cfg.horizon, cfg.samples, cfg.iterations,
                                     cfg.elites, 1, precision, str(device))
            entry["torchrl_mppi_ms"] = 1000 * results.median_seconds(step, max(calls // 5, 5), 2, sync)
            entry["speedup_vs_torchrl"] = entry["torchrl_mppi_ms"] / entry["plan_no_prior_ms"]
            raw.append(entry)
            fast_ms = "-" if entry["act_compiled_ms"] is None else f"{entry['act_compiled_ms']:.2f}"
            print(f"{preset:>5} {precision}: act {entry['act_ms']:.2f} ms (compiled {fast_ms}), plan {entry['plan_ms']:.2f} ms, "
                  f"no prior {entry['plan_no_prior_ms']:.2f} ms (CEM {entry['cem_no_prior_ms']:.2f}); "
                  f"TorchRL MPPIPlanner {entry['torchrl_mppi_ms']:.2f} ms -> {entry['speedup_vs_torchrl']:.1f}x",
                  flush=True)
            rows.append([preset, precision,
                         f"D{cfg.latent_dim} W{cfg.hidden_dim} H{cfg.horizon} S{cfg.samples} I{cfg.iterations}",
                         f"{entry['act_ms']:.2f}", fast_ms, f"{entry['plan_ms']:.2f}", f"{entry['plan_no_prior_ms']:.2f}",
                         f"{entry['cem_no_prior_ms']:.2f}", f"{entry['torchrl_mppi_ms']:.2f}",
                         f"{entry['speedup_vs_torchrl']:.1f}x"])
    cols = ["preset", "precision", "sizes", "act ms (encode + MPPI)", "act ms, compile=true", "MPPI ms", "MPPI ms, no prior",
            "CEM ms, no prior", "TorchRL MPPIPlanner ms", "TorchRL / ours (no prior)"]
    results.save("bench_planner", {"columns": cols, "rows": rows}, {"cases": raw}, results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
