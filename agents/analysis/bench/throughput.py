"""Throughput of the whole agent (`scripts/bench_throughput.py`): collection rate, world-model
update rate, planning latency and peak memory of one case (preset, precision, compile, envs, device).

    case = throughput(agent, trainer, collector, replay, seconds=10.0, updates=20)
    print(summary(what, case)); rows.append(row(case))

What each figure means is in the script's docstring.
"""

from __future__ import annotations

import statistics
import time

import torch

from agents.agent import PlanningAgent
from agents.analysis.results import (
    device_sync,
    int_list,
    median_seconds,
    peak_memory_mb,
)
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer

COLUMNS = ["preset", "precision", "compile", "envs", "device", "env steps/s", "act ms (all envs)", "ms/action",
           "updates/s", "peak MB", "compile s (update + plan)", "graphs"]


def cases(args: dict) -> list[tuple[str, str, bool, int, str]]:
    """(preset, precision, compile, num_envs, device) for every combination the script's
    comma-separated `presets`, `precisions`, `compile`, `num_envs` and `device` ask for."""
    devices = (args["device"] or ("cpu,cuda" if torch.cuda.is_available() else "cpu")).split(",")
    precisions = args["precisions"].split(",")
    compiles = [_flag(v) for v in args["compile"].split(",")]
    num_envs = int_list("num_envs", args["num_envs"])
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


def throughput(agent: PlanningAgent, trainer: WorldModelTrainer, collector, replay: SequenceReplay,
               seconds: float, updates: int) -> dict:
    """`collector` is the script's `agents.training.collect.Collector` over the envs (analysis does not
    import training, hence no annotation).

    Act on all envs (`agent.act`, the vector env step, the replay add) for `seconds` after a
    warm-up of at least 10 steps that also fills the replay to one batch (and compiles the
    planner), then time `updates` updates from replay batches; see the script for each figure."""
    cfg, device = agent.cfg, agent.device
    sync = device_sync(device)
    num_envs = collector.envs.num_envs
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
    update_seconds = median_seconds(lambda: trainer.update(replay.sample(cfg.batch_size)), updates, 2, sync)
    act_ms = 1000 * statistics.median(act_times)
    return {
        "action_repeat": cfg.action_repeat, "batch": [cfg.batch_size, cfg.seq_len],
        "env_steps_per_second": env_steps / elapsed, "agent_steps": len(act_times),
        "act_ms": act_ms, "ms_per_action": act_ms / num_envs,
        "updates_per_second": 1.0 / update_seconds, "update_ms": 1000 * update_seconds,
        "peak_memory_mb": peak_memory_mb(device),
        "compile_update_seconds": first.get("compile/update_seconds"),
        "compile_plan_seconds": agent.planner.compile_seconds.get(num_envs),
    }


def _compile_seconds(case: dict) -> str:
    if not case["compile"]:
        return "-"
    return f"{case['compile_update_seconds']:.0f} + {case['compile_plan_seconds']:.0f}"


def summary(what: str, case: dict) -> str:
    """One line of progress for a finished case named `what`."""
    return (f"{what:<28} {case['env_steps_per_second']:8.1f} env steps/s, act {case['act_ms']:.1f} ms "
            f"({case['ms_per_action']:.1f} ms/action), {case['updates_per_second']:.2f} updates/s, "
            f"peak {case['peak_memory_mb']:,.0f} MB, compile {_compile_seconds(case)} s, {case['graphs']} graphs")


def row(case: dict) -> list:
    """The README row (`COLUMNS`) of a finished case."""
    return [case["preset"], case["precision"], "on" if case["compile"] else "off", case["num_envs"], case["device"],
            f"{case['env_steps_per_second']:,.1f}", f"{case['act_ms']:.1f}", f"{case['ms_per_action']:.1f}",
            f"{case['updates_per_second']:.2f}", f"{case['peak_memory_mb']:,.0f}", _compile_seconds(case),
            case["graphs"]]
