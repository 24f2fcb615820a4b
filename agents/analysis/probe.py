"""Probes of a trained (or fresh) world model on episodes: how much of the env's true state its
latents hold (the linear probe), and how well its value predicts the return that followed.

    episodes, spec = probe_episodes(cfg, seed=1000)          # cfg.probe_episodes random-action episodes
    probe_metrics(trainer, episodes)                          # {"probe/r2": ..., "probe/r2_dim0": ...}, 4-fold
    probe_metrics(trainer, evaluation_episodes, "probe/r2_policy")  # the same on the agent's own episodes
    on_evaluate = ProbeAtEvaluation(cfg, trainer)             # the same at every evaluation of a run
    fit, score = split_episodes(episodes)                     # 3/4 fit, 1/4 scored (robustness)
    value_on_episodes(model, device, evaluation_episodes, cfg.discount)  # {"corr", "r2", "bias", ...}

The probe is cross-validated over episodes (`worldmodel.probe.cross_validated_probe`, 4 folds): every
episode is scored once, by a probe fitted on the others, so the figure does not hang on which
episodes one split happened to hold out.

Random-action episodes cover the states random actions reach: on cartpole-swingup a pole hanging
and swaying, never upright. The same probe on the evaluation's episodes (`probe/r2_policy`) reads
the latents where the agent's own behaviour takes it, which is where a planner needs them.

The value check asks of the same episodes what the planner asks of its value at the horizon: does
V(z_t) rank and size the states as the rewards that then came did (`value/corr_policy`,
`value/r2_policy`, `value/bias_policy` at each evaluation)? A representation that holds the state
but a value that cannot rank it points at the value, not the encoder.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from agents.episodes import make_single_env, record_episodes
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.probe import cross_validated_probe, episode_latents
from worldmodel.trainer import WorldModelTrainer


def probe_episodes(cfg: Config, seed: int) -> tuple[list[TensorDict], ActionSpec]:
    """`cfg.probe_episodes` random-action episodes of `cfg.env`, reset from `seed`, and the env's action
    spec. Each episode carries `obs (L, 3, H, W) uint8` and, where the env has one, `state`."""
    env = make_single_env(cfg, seed=seed)
    try:
        spec = ActionSpec.from_space(env.action_space)
        episodes = record_episodes(env, spec, cfg.probe_episodes, seed=seed)
    finally:
        env.close()
    return episodes, spec


def split_episodes(episodes: list[TensorDict]) -> tuple[list[TensorDict], list[TensorDict]]:
    """The first 3/4 of `episodes` (at least 2 of them) to fit a probe, the rest (at least one) to score it."""
    n_fit = min(max(1, round(0.75 * len(episodes))), len(episodes) - 1)
    return episodes[:n_fit], episodes[n_fit:]


def probe_metrics(trainer: WorldModelTrainer, episodes: list[TensorDict], name: str = "probe/r2"
                  ) -> dict[str, float]:
    """`name` (R² of the current encoder, 4-fold cross-validated over `episodes`) and `<name>_dim<i>`
    per state dimension; empty when there are fewer than 2 episodes or they carry no state."""
    result = probe_on_episodes(trainer.model, trainer.device, episodes)
    if result is None:
        return {}
    return {name: result["r2"], **{f"{name}_dim{i}": r for i, r in enumerate(result["r2_per_dim"])}}


def probe_on_episodes(model, device, episodes: list[TensorDict]) -> dict | None:
    """The probe of `model`'s encoder (a `WorldModel` on `device`), 4-fold cross-validated over
    `episodes` (e.g. an agent's own evaluation episodes): `{"r2", "r2_per_dim", "episodes"}`; None with
    fewer than 2 episodes or without states."""
    if len(episodes) < 2 or any("state" not in ep.keys() for ep in episodes):
        return None
    model.eval()
    result = cross_validated_probe(model.encode_sequence, episodes, model.history, device)
    return {"r2": result.r2, "r2_per_dim": result.r2_per_dim, "episodes": len(episodes)}


def discounted_returns(rewards: torch.Tensor, discount: float, bootstrap: float = 0.0) -> torch.Tensor:
    """rewards `(L,)`, reward t led to step t -> `(L,)`: G_t = r_{t+1} + discount * G_{t+1}, with
    G_{L-1} = `bootstrap` (the value after the last step: 0 at a terminal state)."""
    returns = torch.empty(len(rewards))
    following = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        returns[t] = following
        following = float(rewards[t]) + discount * following
    return returns


@torch.no_grad()
def value_on_episodes(model, device, episodes: list[TensorDict], discount: float) -> dict | None:
    """How well `model`'s value (what the planner reads at its horizon: V(z), or Q(z, policy(z)) with
    `value_of=policy`) predicts the discounted return that followed, over every step but the last of
    `episodes` (each with `obs (L, 3, H, W) uint8`, `reward (L,)` and `terminated (L,)`, as
    `evaluate(trace=...)` gives them).

    The return G_t sums the rewards to the episode's end; where the episode was cut by a time limit
    (not terminated), the value of its last state stands for what would have followed, as training
    bootstraps it. Returns `{"corr", "r2", "bias", "return_mean", "return_std", "steps", "episodes"}`:
    Pearson correlation of V_t with G_t (0 when either is constant), R² of V_t as a prediction of G_t,
    and the mean (V_t - G_t) over mean |G_t|; None without episodes of 2 steps or more with rewards.
    """
    usable = [ep for ep in episodes if "reward" in ep.keys() and len(ep) >= 2]
    if not usable:
        return None
    model.eval()
    values, returns = [], []
    for ep in usable:
        z = episode_latents(model.encode_sequence, ep["obs"], model.history, device)  # (L, D)
        v = model.value(z.to(device)).float().cpu()  # (L,)
        bootstrap = 0.0 if bool(ep["terminated"][-1]) else float(v[-1])
        values.append(v[:-1])
        returns.append(discounted_returns(ep["reward"].float(), discount, bootstrap)[:-1])
    v, g = torch.cat(values).double(), torch.cat(returns).double()
    spread = float(((g - g.mean()) ** 2).sum())
    constant = float(v.std()) == 0.0 or spread == 0.0
    corr = 0.0 if constant else float(torch.corrcoef(torch.stack([v, g]))[0, 1])
    r2 = 1.0 - float(((v - g) ** 2).sum()) / spread if spread > 0 else 0.0
    scale = float(g.abs().mean())
    return {"corr": corr, "r2": r2, "bias": float((v - g).mean()) / scale if scale > 0 else 0.0,
            "return_mean": float(g.mean()), "return_std": float(g.std()), "steps": len(g), "episodes": len(usable)}


def value_metrics(trainer: WorldModelTrainer, episodes: list[TensorDict], discount: float,
                  name: str = "value") -> dict[str, float]:
    """`<name>/corr_policy`, `<name>/r2_policy` and `<name>/bias_policy` of `value_on_episodes` on the
    agent's own `episodes`; empty when there are none."""
    result = value_on_episodes(trainer.model, trainer.device, episodes, discount)
    if result is None:
        return {}
    return {f"{name}/{key}_policy": result[key] for key in ("corr", "r2", "bias")}


class ProbeAtEvaluation:
    """`on_evaluate` hook of the online loop: `probe/r2` of the encoder at each evaluation, so the
    representation's progress sits beside the return in every run. The probe's random-action
    episodes are recorded once, at the first evaluation, with the seed transfer.py's step-0 probe
    uses (`cfg.seed + 1_000`), and never enter the replay. Given the evaluation's own episodes, it
    also logs `probe/r2_policy`: the probe cross-validated over them (at no extra env step), and the
    value check on them (`value_metrics`)."""

    def __init__(self, cfg: Config, trainer: WorldModelTrainer):
        self.cfg, self.trainer = cfg, trainer
        self.episodes: list[TensorDict] | None = None

    def __call__(self, step: int, evaluation: list[TensorDict] | None = None) -> dict[str, float]:
        if self.episodes is None:
            self.episodes, _ = probe_episodes(self.cfg, seed=self.cfg.seed + 1_000)
        return {**probe_metrics(self.trainer, self.episodes),
                **probe_metrics(self.trainer, evaluation or [], "probe/r2_policy"),
                **value_metrics(self.trainer, evaluation or [], self.cfg.discount)}
