"""Robustness to out-of-distribution visuals: a trained agent's return and linear-probe R², clean
and under the perturbations of `envs.perturb`, compared pairwise.

    agent = load_run("runs/x", "latest", seed=12345).agent          # agents.training.assembly
    report = robustness(agent, [("color", 3), ("noise", 2)], episodes=10, seed=12345, probe_episodes=8)

Paired comparisons, so that only the visual shift differs between a clean and a perturbed number:

- Returns: every condition plays `episodes` episodes from the same reset seed (so the same start
  states) and starts the planner from the same random state.
- Probe R²: `probe_episodes` random-action episodes are recorded clean; a ridge probe from latents
  to the true state is fitted on the first 3/4 of them (clean) and scored on the held-out 1/4, once
  clean and once with the perturbation applied to the very same held-out frames (`perturb_frames`
  with each episode's reset seed: exactly the frames the perturbed env would have shown).
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from agents.agent import PlanningAgent
from agents.analysis.probe import probe_episodes as record_probe_episodes
from agents.analysis.probe import split_episodes
from agents.episodes import evaluate, make_envs, make_single_env, record_episodes
from envs import COLOR_MODES, perturb_frames, perturbation_spec
from worldmodel.probe import episode_latents, ridge_r2

PROBE_SEED_OFFSET = 1_000
"""Probe episode `e` is reset with `seed + PROBE_SEED_OFFSET + e` (apart from the return episodes)."""


def _spec(name: str, severity: int) -> str:
    return perturbation_spec(name, severity)


def replayed_frames(agent: PlanningAgent, perturb: str, episode: TensorDict, seed: int) -> torch.Tensor:
    """The frames `(L, 3, H, W) uint8` of a recorded `episode` (reset with `seed`) played again, action for
    action, in the env perturbed by `perturb`: how a physics-level mode (`color_hard`) shows the very same
    states, since colours leave the dynamics alone."""
    env = make_single_env(agent.cfg, perturb=perturb)
    actions = iter(episode["action"][1:])
    try:
        [again] = record_episodes(env, agent.model.action_spec, 1, seed, policy=lambda obs, first: next(actions)[None])
    finally:
        env.close()
    if len(again) != len(episode):
        raise RuntimeError(f"replaying a probe episode under {perturb} gave {len(again)} steps, not {len(episode)}: "
                           "the perturbation changed the dynamics.")
    return again["obs"]


@torch.no_grad()
def episode_returns(agent: PlanningAgent, episodes: int, seed: int, perturb: str | None = None,
                    on_step=None, trace: list | None = None) -> np.ndarray:
    """Returns `(episodes,)` of the agent (exploration off) on `cfg.env`, perturbed by `perturb`
    (`"name:severity"`, None for clean), episodes reset from `seed`.

    The agent's state (its planner's random streams included) is put back afterwards, so conditions
    evaluated one after another see the same planner noise. `on_step(obs (1, C, H, W) uint8)` sees
    every observation; `trace`, a list, receives the episodes (see `agents.episodes.evaluate`).
    """
    envs = make_envs(agent.cfg, 1, seed=seed, asynchronous=False, perturb=perturb)
    start = agent.state_dict()
    try:
        return evaluate(agent, envs, agent.model.action_spec, episodes, seed=seed, on_step=on_step, trace=trace)
    finally:
        envs.close()
        agent.load_state_dict(start)


def probe_r2(agent: PlanningAgent, fit: list[TensorDict], score: list[TensorDict], seed: int,
             perturbations: list[tuple[str, int]]) -> dict[str, dict]:
    """Probe R², fitted on the clean `fit` episodes and scored on the held-out `score` episodes, clean
    and under each perturbation (probe episode e was reset with `seed + e`, `fit` first).

    Returns `{"clean": {...}, "name:severity": {...}}`, each `{"r2", "r2_per_dim"}`; empty when the
    episodes carry no `state` (e.g. Atari).
    """
    if not fit or not score or "state" not in fit[0].keys():
        return {}
    model = agent.model
    model.eval()

    def features(frames: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([episode_latents(model.encode_sequence, f, model.history, agent.device)
                          for f in frames])

    train_x = features([ep["obs"] for ep in fit])
    train_y = torch.cat([ep["state"] for ep in fit])
    held = list(enumerate(score, start=len(fit)))
    test_y = torch.cat([ep["state"] for _, ep in held])
    conditions = {"clean": [ep["obs"] for _, ep in held]}
    for name, severity in perturbations:
        if name in COLOR_MODES:  # the scene itself is recoloured: play the held-out episodes again in it
            frames = [replayed_frames(agent, name, ep, seed + e) for e, ep in held]
        else:
            frames = [torch.from_numpy(perturb_frames(ep["obs"].numpy(), name, severity, seed=seed + e)) for e, ep in held]
        conditions[_spec(name, severity)] = frames
    out = {}
    for key, frames in conditions.items():
        result = ridge_r2(train_x, train_y, features(frames), test_y)
        out[key] = {"r2": result.r2, "r2_per_dim": result.r2_per_dim}
    return out


def robustness(agent: PlanningAgent, perturbations: list[tuple[str, int]], episodes: int, seed: int,
               probe_episodes: int, on_step=None) -> dict:
    """Return and probe R², clean and under each `(name, severity)`, as a JSON-ready dict:

        {"clean": {"returns", "return_mean", "return_std", "probe_r2", "probe_r2_per_dim"},
         "perturbations": {"color:3": {"name", "severity", same keys as clean,
                                       "return_delta", "probe_r2_delta"}, ...},
         "probe": {"episodes", "fit_episodes", "seed"}}

    Deltas are perturbed minus clean. `probe_r2` is None where the env has no state. `on_step` sees
    the clean episodes' observations (e.g. for a video).
    """
    probe_seed = seed + PROBE_SEED_OFFSET
    fit, score = split_episodes(record_probe_episodes(agent.cfg.replace(probe_episodes=probe_episodes), probe_seed)[0])
    probes = probe_r2(agent, fit, score, probe_seed, perturbations)

    def condition(key: str, perturb: str | None, hook=None) -> dict:
        returns = episode_returns(agent, episodes, seed, perturb, on_step=hook)
        probe = probes.get(key, {})
        return {"returns": returns.tolist(), "return_mean": float(returns.mean()), "return_std": float(returns.std()),
                "probe_r2": probe.get("r2"), "probe_r2_per_dim": probe.get("r2_per_dim")}

    clean = condition("clean", None, on_step)
    shifted = {}
    for name, severity in perturbations:
        key = _spec(name, severity)
        result = condition(key, key)
        result["return_delta"] = result["return_mean"] - clean["return_mean"]
        result["probe_r2_delta"] = None if result["probe_r2"] is None else result["probe_r2"] - clean["probe_r2"]
        shifted[key] = {"name": name, "severity": severity, **result}
    return {"clean": clean, "perturbations": shifted,
            "probe": {"episodes": probe_episodes, "fit_episodes": len(fit), "seed": probe_seed}}


def format_table(report: dict) -> str:
    """A plain-text table of a `robustness` report: one row per condition."""
    def r2(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = [("condition", "return", "Δ return", "probe R²", "Δ R²")]
    clean = report["clean"]
    rows.append(("clean", f"{clean['return_mean']:.1f} ± {clean['return_std']:.1f}", "", r2(clean["probe_r2"]), ""))
    for key, r in report["perturbations"].items():
        rows.append((key, f"{r['return_mean']:.1f} ± {r['return_std']:.1f}", f"{r['return_delta']:+.1f}",
                     r2(r["probe_r2"]), "" if r["probe_r2_delta"] is None else f"{r['probe_r2_delta']:+.3f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
