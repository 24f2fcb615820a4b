"""The linear probe on a trained (or fresh) encoder: how much of the env's true state its latents hold.

    episodes, spec = probe_episodes(cfg, seed=1000)          # cfg.probe_episodes random-action episodes
    probe_metrics(trainer, episodes)                          # {"probe/r2": ..., "probe/r2_dim0": ...}, 4-fold
    probe_metrics(trainer, evaluation_episodes, "probe/r2_policy")  # the same on the agent's own episodes
    on_evaluate = ProbeAtEvaluation(cfg, trainer)             # the same at every evaluation of a run
    fit, score = split_episodes(episodes)                     # 3/4 fit, 1/4 scored (robustness)

The probe is cross-validated over episodes (`worldmodel.probe.cross_validated_probe`, 4 folds): every
episode is scored once, by a probe fitted on the others, so the figure does not hang on which
episodes one split happened to hold out.

Random-action episodes cover the states random actions reach: on cartpole-swingup a pole hanging
and swaying, never upright. The same probe on the evaluation's episodes (`probe/r2_policy`) reads
the latents where the agent's own behaviour takes it, which is where a planner needs them.
"""

from __future__ import annotations

from tensordict import TensorDict

from agents.episodes import make_single_env, record_episodes
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.probe import cross_validated_probe
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


class ProbeAtEvaluation:
    """`on_evaluate` hook of the online loop: `probe/r2` of the encoder at each evaluation, so the
    representation's progress sits beside the return in every run. The probe's random-action
    episodes are recorded once, at the first evaluation, with the seed transfer.py's step-0 probe
    uses (`cfg.seed + 1_000`), and never enter the replay. Given the evaluation's own episodes, it
    also logs `probe/r2_policy`: the probe cross-validated over them (at no extra env step)."""

    def __init__(self, cfg: Config, trainer: WorldModelTrainer):
        self.cfg, self.trainer = cfg, trainer
        self.episodes: list[TensorDict] | None = None

    def __call__(self, step: int, evaluation: list[TensorDict] | None = None) -> dict[str, float]:
        if self.episodes is None:
            self.episodes, _ = probe_episodes(self.cfg, seed=self.cfg.seed + 1_000)
        return {**probe_metrics(self.trainer, self.episodes),
                **probe_metrics(self.trainer, evaluation or [], "probe/r2_policy")}
