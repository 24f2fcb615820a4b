"""Probes of a trained (or fresh) world model on episodes: how much of the env's true state its
latents hold (the linear probe), and how well its value predicts the return that followed.

    episodes, spec = probe_episodes(cfg, seed=1000)          # cfg.probe_episodes random-action episodes
    probe_metrics(trainer, episodes)                          # {"probe/r2": ..., "probe/r2_dim0": ...}, 4-fold
    probe_metrics(trainer, evaluation_episodes, "probe/r2_policy")  # the same on the agent's own episodes
    on_evaluate = ProbeAtEvaluation(cfg, trainer)             # the same at every evaluation of a run
    fit, score = split_episodes(episodes)                     # 3/4 fit, 1/4 scored (robustness)
    value_on_episodes(model, device, evaluation_episodes, cfg.discount)  # {"corr", "r2", "bias", ...}
    reward_on_episodes(model, device, evaluation_episodes)    # the reward head: {"corr", ..., "bias_top"}
    beliefs_on_episode(model, device, episode, cfg.discount)  # per step: value, return, reward_pred

The probe is cross-validated over episodes (`worldmodel.probe.cross_validated_probe`, 4 folds): every
episode is scored once, by a probe fitted on the others, so the figure does not hang on which
episodes one split happened to hold out.

Random-action episodes cover the states random actions reach: on cartpole-swingup a pole hanging
and swaying, never upright. The same probe on the evaluation's episodes (`probe/r2_policy`) reads
the latents where the agent's own behaviour takes it, which is where a planner needs them.

The value check asks of the same episodes what the planner asks of its value at the horizon: does
V(z_t) rank and size the states as the rewards that then came did (`value/corr_policy`,
`value/r2_policy`, `value/bias_policy` at each evaluation)? A representation that holds the state
but a value that cannot rank it points at the value, not the encoder. The reward check does the same
for the reward head, step by step along the actions the agent took (`reward/corr_policy`, ...,
`reward/bias_top_policy`: does it underrate the best transitions?).
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


def agreement(predicted: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """How well `predicted (N,)` matches `actual (N,)`: Pearson correlation `corr` (0 when either is
    constant), `r2` of the prediction (1 - squared error / variance of `actual`), and `bias`, the mean
    error over the mean |actual|."""
    p, a = predicted.double(), actual.double()
    spread = float(((a - a.mean()) ** 2).sum())
    constant = len(p) < 2 or float(p.std()) == 0.0 or spread == 0.0
    corr = 0.0 if constant else float(torch.corrcoef(torch.stack([p, a]))[0, 1])
    r2 = 1.0 - float(((p - a) ** 2).sum()) / spread if spread > 0 else 0.0
    scale = float(a.abs().mean())
    return {"corr": corr, "r2": r2, "bias": float((p - a).mean()) / scale if scale > 0 else 0.0}


@torch.no_grad()
def beliefs_on_episode(model, device, episode: TensorDict, discount: float) -> dict[str, torch.Tensor]:
    """What `model` believes along one traced episode (`obs (L, 3, H, W) uint8`, `reward (L,)`,
    `terminated (L,)` and, for the predicted rewards, `action (L, A)`: what led to each frame), against
    what happened, all `(L,)` float32 on the CPU:

    - `value`: what the planner reads at its horizon, V(z_t) (Q(z_t, policy(z_t)) with `value_of=policy`);
    - `return`: the discounted return that followed, G_t; where the episode was cut by a time limit
      (not terminated), the value of its last state stands for what would have followed, as training
      bootstraps it (so G at the last step is that value, and the last step says nothing);
    - `reward_pred` (with `action`): the reward the model predicts for the step into t, from z_{t-1} and
      the action taken, beside `reward`; NaN at t = 0 (no step led there);
    - `novelty` (a model trained with `novelty`): how unlike its replayed latents z_t is (`WorldModel.novelty`).
    """
    model.eval()
    z = episode_latents(model.encode_sequence, episode["obs"], model.history, device).to(device)  # (L, D)
    value = model.value(z).float().cpu()
    bootstrap = 0.0 if bool(episode["terminated"][-1]) else float(value[-1])
    beliefs = {"value": value, "return": discounted_returns(episode["reward"].float(), discount, bootstrap)}
    if "action" in episode.keys():
        predicted = model.transition(z[:-1], episode["action"][1:].to(device, z.dtype))[1].float().cpu()
        beliefs["reward_pred"] = torch.cat([torch.full((1,), float("nan")), predicted])
    if model.has_novelty:
        beliefs["novelty"] = model.novelty(z).float().cpu()
    return beliefs


def novelty_on_episodes(beliefs: list[dict]) -> dict | None:
    """How novel a model trained with `novelty` finds the states of some episodes (`beliefs_on_episode` of
    each): `{"median", "p90", "start_median", "steps", "episodes"}`, where `start_median` is over the
    episodes' first states (e.g. cartpole-balance's upright, still pole, played with `evaluate.py on_env=`);
    about 1 (or below, see `WorldModel.novelty`) is as familiar as a replayed latent. None for a model
    without novelty."""
    known = [b["novelty"] for b in beliefs if "novelty" in b and len(b["novelty"])]
    if not known:
        return None
    every = torch.cat(known)
    return {"median": float(every.median()), "p90": float(torch.quantile(every, 0.9)),
            "start_median": float(torch.stack([n[0] for n in known]).median()), "steps": len(every),
            "episodes": len(known)}


def value_on_episodes(model, device, episodes: list[TensorDict], discount: float,
                      beliefs: list[dict] | None = None) -> dict | None:
    """How well `model`'s value (what the planner reads at its horizon: V(z), or Q(z, policy(z)) with
    `value_of=policy`) predicts the discounted return that followed (`beliefs_on_episode`), over every
    step but the last of `episodes` (each with `obs`, `reward` and `terminated`, as
    `evaluate(trace=...)` gives them). Returns `{"corr", "r2", "bias", "return_mean", "return_std",
    "steps", "episodes"}` (see `agreement`); None without episodes of 2 steps or more with rewards.
    `beliefs`: `beliefs_on_episode` of each episode, when the caller has them already (one encoding
    pass serves the value and reward checks).
    """
    beliefs = beliefs or [None] * len(episodes)
    usable = [(ep, b) for ep, b in zip(episodes, beliefs) if "reward" in ep.keys() and len(ep) >= 2]
    if not usable:
        return None
    values, returns = [], []
    for ep, known in usable:
        known = known or beliefs_on_episode(model, device, ep, discount)
        values.append(known["value"][:-1])
        returns.append(known["return"][:-1])
    v, g = torch.cat(values), torch.cat(returns)
    return {**agreement(v, g), "return_mean": float(g.mean()), "return_std": float(g.std()), "steps": len(g),
            "episodes": len(usable)}


def reward_on_episodes(model, device, episodes: list[TensorDict], beliefs: list[dict] | None = None) -> dict | None:
    """How well `model`'s reward head predicts the rewards of `episodes` (each with `obs`, `action` and
    `reward`, as `evaluate(trace=...)` gives them), step by step from the encoded latent and the action
    taken: `{"corr", "r2", "bias", "bias_top", "steps", "episodes"}` (see `agreement`), where `bias_top`
    is the bias over the steps whose reward is in the top quarter of these steps' rewards: a model that
    underrates the best transitions it took (negative) cannot plan towards them. None without
    episodes of 2 steps or more with rewards and actions. `beliefs` as for `value_on_episodes`."""
    beliefs = beliefs or [None] * len(episodes)
    usable = [(ep, b) for ep, b in zip(episodes, beliefs)
              if "reward" in ep.keys() and "action" in ep.keys() and len(ep) >= 2]
    if not usable:
        return None
    predicted = torch.cat([(b or beliefs_on_episode(model, device, ep, 1.0))["reward_pred"][1:] for ep, b in usable])
    actual = torch.cat([ep["reward"][1:].float() for ep, _ in usable])
    top = actual >= torch.quantile(actual, 0.75)
    scale = float(actual[top].abs().mean())
    bias_top = float((predicted[top] - actual[top]).mean()) / scale if scale > 0 else 0.0
    return {**agreement(predicted, actual), "bias_top": bias_top, "steps": len(actual), "episodes": len(usable)}


def state_on_episodes(episodes: list[TensorDict]) -> dict | None:
    """Where the episodes went in the env's own state: `{"mean", "std"}` per state dimension over every
    step (e.g. cartpole's cart position, the cosine and sine of the pole angle, both velocities);
    None when they carry no state."""
    if not episodes or any("state" not in ep.keys() for ep in episodes):
        return None
    states = torch.cat([ep["state"].float() for ep in episodes])
    return {"mean": states.mean(0).tolist(), "std": states.std(0).tolist(), "steps": len(states)}


def value_and_reward_metrics(trainer: WorldModelTrainer, episodes: list[TensorDict], discount: float
                             ) -> dict[str, float]:
    """`value/{corr,r2,bias}_policy` of `value_on_episodes` and `reward/{corr,r2,bias,bias_top}_policy`
    of `reward_on_episodes` on the agent's own `episodes`, from one encoding pass; each empty when
    its check has no episodes to score."""
    usable = [ep for ep in episodes if "reward" in ep.keys() and len(ep) >= 2]
    beliefs = [beliefs_on_episode(trainer.model, trainer.device, ep, discount) for ep in usable]
    metrics: dict[str, float] = {}
    value = value_on_episodes(trainer.model, trainer.device, usable, discount, beliefs)
    if value is not None:
        metrics.update({f"value/{key}_policy": value[key] for key in ("corr", "r2", "bias")})
    reward = reward_on_episodes(trainer.model, trainer.device, usable, beliefs)
    if reward is not None:
        metrics.update({f"reward/{key}_policy": reward[key] for key in ("corr", "r2", "bias", "bias_top")})
    return metrics


class ProbeAtEvaluation:
    """`on_evaluate` hook of the online loop: `probe/r2` of the encoder at each evaluation, so the
    representation's progress sits beside the return in every run. The probe's random-action
    episodes are recorded once, at the first evaluation, with the seed transfer.py's step-0 probe
    uses (`cfg.seed + 1_000`), and never enter the replay. Given the evaluation's own episodes, it
    also logs `probe/r2_policy`: the probe cross-validated over them (at no extra env step), and the
    value and reward checks on them (`value_and_reward_metrics`)."""

    def __init__(self, cfg: Config, trainer: WorldModelTrainer):
        self.cfg, self.trainer = cfg, trainer
        self.episodes: list[TensorDict] | None = None

    def __call__(self, step: int, evaluation: list[TensorDict] | None = None) -> dict[str, float]:
        if self.episodes is None:
            self.episodes, _ = probe_episodes(self.cfg, seed=self.cfg.seed + 1_000)
        return {**probe_metrics(self.trainer, self.episodes),
                **probe_metrics(self.trainer, evaluation or [], "probe/r2_policy"),
                **value_and_reward_metrics(self.trainer, evaluation or [], self.cfg.discount)}
