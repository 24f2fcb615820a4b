"""Planning latency (`scripts/bench_planner.py`): milliseconds per action of our agent and
planners, against TorchRL's `MPPIPlanner` at the same latent size, width, horizon, samples,
iterations and elites.

    entry = {"preset": "cpu", **planning_latency(agent, compiled_agent, calls=50)}   # {"act_ms": .., ...}
    print(summary(entry))
    rows.append(row(entry))

`act` = a full agent step (stack the frame history, encode, plan, warm start), `plan` = the
planner alone from a latent, both with the config's policy prior; `plan, no prior` is the same
arithmetic TorchRL's planner does (no policy proposals), the figure to compare with it.
"""

from __future__ import annotations

import torch

from agents.agent import PlanningAgent
from agents.analysis.results import device_sync, median_seconds
from agents.analysis.torchrl_reference import plan_step
from agents.planners import make_planner
from worldmodel.history import FrameHistory

COLUMNS = ["preset", "precision", "sizes", "act ms (encode + MPPI)", "act ms, compile=true", "MPPI ms",
           "MPPI ms, no prior", "CEM ms, no prior", "TorchRL MPPIPlanner ms", "TorchRL / ours (no prior)"]


def planning_latency(agent: PlanningAgent, compiled_agent: PlanningAgent | None, calls: int) -> dict:
    """Median ms of `agent.act`, of its planner (MPPI with and without the policy prior, CEM
    without) from a latent, of `compiled_agent.act` after its compile (None: not timed), and of
    TorchRL's MPPIPlanner at the agent's sizes and precision; one 1-env random frame throughout."""
    cfg, model, device = agent.cfg, agent.model, agent.device
    sync = device_sync(device)
    obs = torch.randint(0, 255, (1, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8)
    z = model.encode(FrameHistory(1, cfg.history).push(obs, torch.ones(1, dtype=torch.bool)).to(device))
    planner = make_planner(cfg, model)
    bare = make_planner(cfg.replace(policy_prior=False), model)
    cem = make_planner(cfg.replace(policy_prior=False, planner="cem"), model)
    g = torch.Generator(device=device).manual_seed(0)

    def ms(fn, repeats: int = calls, warmup: int = 5) -> float:
        return 1000 * median_seconds(fn, repeats, warmup, sync)

    entry = {
        "precision": cfg.precision, "latent": cfg.latent_dim, "hidden": cfg.hidden_dim, "horizon": cfg.horizon,
        "samples": cfg.samples, "iterations": cfg.iterations, "elites": cfg.elites,
        "act_ms": ms(lambda: agent.act(obs)),
        "plan_ms": ms(lambda: planner.plan(z, generator=g)),
        "plan_no_prior_ms": ms(lambda: bare.plan(z, generator=g)),
        "cem_no_prior_ms": ms(lambda: cem.plan(z, generator=g)),
        "act_compiled_ms": None,
    }
    if compiled_agent is not None:
        compiled_agent.act(obs)  # compiles
        entry["act_compiled_ms"] = ms(lambda: compiled_agent.act(obs))
    step, _ = plan_step("mppi", cfg.latent_dim, cfg.hidden_dim, cfg.horizon, cfg.samples, cfg.iterations,
                        cfg.elites, 1, cfg.precision, str(device))
    entry["torchrl_mppi_ms"] = ms(step, max(calls // 5, 5), 2)
    entry["speedup_vs_torchrl"] = entry["torchrl_mppi_ms"] / entry["plan_no_prior_ms"]
    return entry


def _compiled_ms(entry: dict) -> str:
    return "-" if entry["act_compiled_ms"] is None else f"{entry['act_compiled_ms']:.2f}"


def summary(entry: dict) -> str:
    """One line of progress for a `planning_latency` entry that also holds its "preset"."""
    return (f"{entry['preset']:>5} {entry['precision']}: act {entry['act_ms']:.2f} ms (compiled {_compiled_ms(entry)}), "
            f"plan {entry['plan_ms']:.2f} ms, no prior {entry['plan_no_prior_ms']:.2f} ms "
            f"(CEM {entry['cem_no_prior_ms']:.2f}); TorchRL MPPIPlanner {entry['torchrl_mppi_ms']:.2f} ms -> "
            f"{entry['speedup_vs_torchrl']:.1f}x")


def row(entry: dict) -> list[str]:
    """The README row (`COLUMNS`) of a `planning_latency` entry that also holds its "preset"."""
    return [entry["preset"], entry["precision"],
            f"D{entry['latent']} W{entry['hidden']} H{entry['horizon']} S{entry['samples']} I{entry['iterations']}",
            f"{entry['act_ms']:.2f}", _compiled_ms(entry), f"{entry['plan_ms']:.2f}",
            f"{entry['plan_no_prior_ms']:.2f}", f"{entry['cem_no_prior_ms']:.2f}", f"{entry['torchrl_mppi_ms']:.2f}",
            f"{entry['speedup_vs_torchrl']:.1f}x"]
