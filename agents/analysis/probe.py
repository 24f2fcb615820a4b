"""The linear probe on a trained (or fresh) encoder: how much of the env's true state its latents hold.

    fit, score, spec = probe_episodes(cfg, seed=1000)       # random-action episodes, 3/4 fit, 1/4 scored
    probe_metrics(trainer, fit, score)                        # {"probe/r2": ..., "probe/r2_dim0": ...}
    on_evaluate = ProbeAtEvaluation(cfg, trainer)             # the same at every evaluation of a run
"""

from __future__ import annotations

from tensordict import TensorDict

from agents.episodes import make_single_env, record_episodes
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.probe import linear_probe
from worldmodel.trainer import WorldModelTrainer


def probe_episodes(cfg: Config, seed: int) -> tuple[list[TensorDict], list[TensorDict], ActionSpec]:
    """`cfg.probe_episodes` random-action episodes of `cfg.env`, split 3/4 to fit a probe, 1/4 to score it
    (at least one each side), and the env's action spec. Each episode carries `obs (L, 3, H, W) uint8`
    and, where the env has one, `state`."""
    env = make_single_env(cfg, seed=seed)
    try:
        spec = ActionSpec.from_space(env.action_space)
        episodes = record_episodes(env, spec, cfg.probe_episodes, seed=seed)
    finally:
        env.close()
    n_fit = min(max(1, round(0.75 * len(episodes))), len(episodes) - 1)
    return episodes[:n_fit], episodes[n_fit:], spec


def probe_metrics(trainer: WorldModelTrainer, fit: list[TensorDict], score: list[TensorDict]) -> dict[str, float]:
    """`probe/r2` (and per state dimension) of the current encoder; empty when episodes carry no state."""
    if not fit or "state" not in fit[0].keys():
        return {}
    model = trainer.model
    model.eval()
    result = linear_probe(model.encode_sequence, fit, score, model.history, trainer.device)
    out = {"probe/r2": result.r2}
    out.update({f"probe/r2_dim{i}": r for i, r in enumerate(result.r2_per_dim)})
    return out


class ProbeAtEvaluation:
    """`on_evaluate` hook of the online loop: `probe/r2` of the encoder at each evaluation, so the
    representation's progress sits beside the return in every run. The probe's random-action
    episodes are recorded once, at the first evaluation, with the seed transfer.py's step-0 probe
    uses (`cfg.seed + 1_000`), and never enter the replay."""

    def __init__(self, cfg: Config, trainer: WorldModelTrainer):
        self.cfg, self.trainer = cfg, trainer
        self.fit: list[TensorDict] | None = None
        self.score: list[TensorDict] = []

    def __call__(self, step: int) -> dict[str, float]:
        if self.fit is None:
            self.fit, self.score, _ = probe_episodes(self.cfg, seed=self.cfg.seed + 1_000)
        return probe_metrics(self.trainer, self.fit, self.score)
