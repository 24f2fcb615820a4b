"""Throughput of the whole agent, per preset, precision, compile off / on, number of envs and device:
collection rate, world-model update rate, planning latency and peak memory.

    python scripts/bench_throughput.py [presets=debug,cpu] [precisions=fp32,bf16,fp16] [compile=false,true]
        [num_envs=1,2,4] [device=cpu,cuda] [env=Pendulum-v1] [seconds=10] [updates=20]
        [out=docs/results] [readme=true]

Every case runs in its own process (its own peak memory, its own compiled graphs). Per case:

- **env steps/s**: the acting loop of training, without updates: `agent.act` on all N envs in one
  batched plan (encode + MPPI/CEM), the vector env step (asynchronous workers when N > 1), the
  replay add; environment steps counted as the loop counts them (live envs x action_repeat),
  over `seconds` after a warm-up that also compiles the planner.
- **act ms**: median wall time of one `agent.act` call for the N envs; **ms/action** = act ms / N.
- **updates/s**: 1 / median time of one update from a replay batch (sampling + loss + backward +
  Adam step), on the frames the loop just collected.
- **peak MB**: on CPU the process's peak resident set (Python, torch, replay, compile; env worker
  processes excluded), on CUDA `torch.cuda.max_memory_allocated`.
- **compile s**: the first update's and the first plan's wall time with `compile=true` (compiling
  included; a warm inductor cache on disk makes it shorter); **graphs**: graphs dynamo built in the
  whole case (3 with compile: the update, and the planner's two rollouts at N, the candidates'
  scoring and the policy prior's proposals; more would be recompiles).

Defaults: presets debug,cpu (plus gpu on CUDA), fp16 only on CUDA, CUDA only when present. Writes
docs/results/bench_throughput.json and refreshes the README table (`readme=false`: not the table);
`out=DIR` writes the JSON into DIR instead and leaves the README alone (smoke runs). Run it alone:
other jobs on the same cores distort it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agents.analysis import results
from agents.analysis.bench.throughput import COLUMNS, cases, row, summary, throughput
from worldmodel.cli import parse_keys

KEYS = {
    "presets": (str, "", "presets, comma-separated; empty: debug,cpu, plus gpu on a CUDA device"),
    "precisions": (str, "fp32,bf16,fp16", "precisions, comma-separated (fp16 runs on CUDA only)"),
    "compile": (str, "false,true", "compile settings, comma-separated true/false"),
    "num_envs": (str, "1,2,4", "numbers of envs, comma-separated"),
    "device": (str, "", "devices, comma-separated; empty: cpu, plus cuda when present"),
    "env": (str, "Pendulum-v1", "environment id"),
    "seconds": (float, 10.0, "seconds of acting counted per case, after a warm-up"),
    "updates": (int, 20, "timed updates per case (the median is reported)"),
    "out": (str, "", "write the JSON into this folder instead of docs/results, leaving the README alone"),
    "readme": (bool, True, "refresh the README table (false: only the JSON)"),
    "one": (str, "", "internal: run the single case preset:precision:compile:num_envs:device and print its JSON"),
}


def run_one(preset: str, precision: str, compiled: bool, num_envs: int, device: str, env: str, seconds: float,
            updates: int) -> dict:
    """One case, in this process: see the module docstring for what is measured."""
    import torch._dynamo

    from agents.episodes import make_envs
    from agents.training.assembly import (
        build_agent,
        build_model,
        build_replay,
        build_trainer,
    )
    from agents.training.collect import Collector
    from worldmodel.actions import ActionSpec
    from worldmodel.config import Config

    cfg = Config.from_preset(preset, precision=precision, compile=compiled, num_envs=num_envs, device=device,
                             env=env, buffer_size=10_000, buffer_on_disk=False)
    dev = torch.device(device)
    torch.manual_seed(0)
    envs = make_envs(cfg, num_envs, seed=0)
    spec = ActionSpec.from_space(envs.single_action_space)
    replay = build_replay(cfg, spec, 0, torch.device("cpu"))
    model = build_model(cfg, spec, dev)
    trainer = build_trainer(cfg, model, dev)
    if compiled:
        trainer.compile()
    agent = build_agent(cfg, model, trainer, dev, seed=0)  # compiles its planner when cfg.compile
    collector = Collector(envs, spec, replay, cfg.action_repeat, seed=0)
    agent.reset(torch.ones(num_envs, dtype=torch.bool))
    case = throughput(agent, trainer, collector, replay, seconds, updates)
    envs.close()
    return {"preset": preset, "precision": precision, "compile": compiled, "num_envs": num_envs, "device": device,
            "env": env, **case, "graphs": torch._dynamo.utils.counters["stats"]["unique_graphs"]}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_throughput.py")
    common = {"env": args["env"], "seconds": args["seconds"], "updates": args["updates"]}
    if args["one"]:
        preset, precision, compiled, n, device = args["one"].split(":")
        print(json.dumps(run_one(preset, precision, compiled == "true", int(n), device, **common)))
        return
    raw, rows = [], []
    for preset, precision, compiled, n, device in cases(args):
        what = f"{preset}:{precision}:{str(compiled).lower()}:{n}:{device}"
        cmd = [sys.executable, __file__, f"one={what}"] + [f"{k}={v}" for k, v in common.items()]
        raw.append(results.run_json(cmd, what))
        print(summary(what, raw[-1]), flush=True)
        rows.append(row(raw[-1]))
    folder = Path(args["out"]).resolve() if args["out"] else results.RESULTS
    results.save("bench_throughput", {"columns": COLUMNS, "rows": rows}, {"cases": raw}, results.command_line(),
                 folder, readme=args["readme"])


if __name__ == "__main__":
    main(sys.argv[1:])
