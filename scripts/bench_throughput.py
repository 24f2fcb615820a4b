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
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from worldmodel.config import parse_keys

sys.path.insert(0, os.path.dirname(__file__))
import results

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

    from agents.agent import PlanningAgent
    from agents.collect import Collector
    from agents.session import build_envs
    from worldmodel.actions import ActionSpec
    from worldmodel.config import Config
    from worldmodel.model import WorldModel
    from worldmodel.replay import SequenceReplay
    from worldmodel.trainer import WorldModelTrainer

    cfg = Config.from_preset(preset, precision=precision, compile=compiled, num_envs=num_envs, device=device,
                             env=env, buffer_size=10_000, buffer_on_disk=False)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    envs = build_envs(cfg, 0, num_envs)
    spec = ActionSpec.from_space(envs.single_action_space)
    replay = SequenceReplay(cfg.buffer_size, cfg.sample_len, (3, cfg.image_size, cfg.image_size), spec.dim,
                            num_envs=num_envs)
    model = WorldModel(cfg, spec).to(dev)
    trainer = WorldModelTrainer(model, dev, precision, cfg.lr, cfg.grad_clip)
    if compiled:
        trainer.compile()
    agent = PlanningAgent(cfg, model, trainer, dev, seed=0)  # compiles its planner when cfg.compile
    collector = Collector(envs, spec, replay, cfg.action_repeat, seed=0)
    agent.reset(torch.ones(num_envs, dtype=torch.bool))

    act_times: list[float] = []

    def agent_step() -> int:
        start = time.perf_counter()
        action = agent.act(collector.observation())
        sync()
        act_times.append(time.perf_counter() - start)
        result = collector.step(action)
        if result.first.any():
            agent.reset(result.first)
        return result.env_steps

    warmup = 0
    while warmup < 10 or not replay.can_sample():
        agent_step()
        warmup += 1
    act_times.clear()
    env_steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env_steps += agent_step()
    elapsed = time.perf_counter() - start

    first = trainer.update(replay.sample(cfg.batch_size))
    update_seconds = results.median_seconds(lambda: trainer.update(replay.sample(cfg.batch_size)), updates, 2, sync)
    envs.close()
    act_ms = 1000 * statistics.median(act_times)
    return {
        "preset": preset, "precision": precision, "compile": compiled, "num_envs": num_envs, "device": device,
        "env": env, "action_repeat": cfg.action_repeat, "batch": [cfg.batch_size, cfg.seq_len],
        "env_steps_per_second": env_steps / elapsed, "agent_steps": len(act_times),
        "act_ms": act_ms, "ms_per_action": act_ms / num_envs,
        "updates_per_second": 1.0 / update_seconds, "update_ms": 1000 * update_seconds,
        "peak_memory_mb": results.peak_memory_mb(dev),
        "compile_update_seconds": first.get("compile/update_seconds"),
        "compile_plan_seconds": agent.planner.compile_seconds.get(num_envs),
        "graphs": torch._dynamo.utils.counters["stats"]["unique_graphs"],
    }


def cases(args: dict) -> list[tuple[str, str, bool, int, str]]:
    """(preset, precision, compile, num_envs, device) for every combination asked for."""
    devices = (args["device"] or ("cpu,cuda" if torch.cuda.is_available() else "cpu")).split(",")
    precisions = args["precisions"].split(",")
    compiles = [_flag(v) for v in args["compile"].split(",")]
    num_envs = results.int_list("num_envs", args["num_envs"])
    out = []
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit(f"device={device} but CUDA is not available here.")
        presets = (args["presets"] or ("debug,cpu,gpu" if device.startswith("cuda") else "debug,cpu")).split(",")
        for preset in presets:
            for precision in precisions:
                if precision == "fp16" and not device.startswith("cuda"):
                    continue  # fp16 autocast is CUDA-only (see worldmodel/precision.py)
                out += [(preset, precision, c, n, device) for c in compiles for n in num_envs]
    return out


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise SystemExit(f"compile takes true or false values, got {value!r}.")
    return value.lower() == "true"


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
        r = results.run_json(cmd, what)
        raw.append(r)
        compile_s = (f"{r['compile_update_seconds']:.0f} + {r['compile_plan_seconds']:.0f}" if compiled else "-")
        print(f"{what:<28} {r['env_steps_per_second']:8.1f} env steps/s, act {r['act_ms']:.1f} ms "
              f"({r['ms_per_action']:.1f} ms/action), {r['updates_per_second']:.2f} updates/s, "
              f"peak {r['peak_memory_mb']:,.0f} MB, compile {compile_s} s, {r['graphs']} graphs", flush=True)
        rows.append([preset, precision, "on" if compiled else "off", n, device, f"{r['env_steps_per_second']:,.1f}",
                     f"{r['act_ms']:.1f}", f"{r['ms_per_action']:.1f}", f"{r['updates_per_second']:.2f}",
                     f"{r['peak_memory_mb']:,.0f}", compile_s, r["graphs"]])
    cols = ["preset", "precision", "compile", "envs", "device", "env steps/s", "act ms (all envs)", "ms/action",
            "updates/s", "peak MB", "compile s (update + plan)", "graphs"]
    folder = Path(args["out"]).resolve() if args["out"] else results.RESULTS
    results.save("bench_throughput", {"columns": cols, "rows": rows}, {"cases": raw}, results.command_line(),
                 folder, readme=args["readme"])


if __name__ == "__main__":
    main(sys.argv[1:])
