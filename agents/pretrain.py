"""Offline pretraining of the world model on a fixed replay, with the linear probe as the yardstick.

Steps here are gradient updates. `probe/r2` is logged at step 0 (the untrained encoder) and at
every evaluation, so a run shows what the self-supervised objective bought.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tensordict import TensorDict
from tqdm.auto import tqdm

from agents.collect import record_episodes
from agents.runs import MetricsLogger, RunDir
from envs import make_env
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.probe import linear_probe
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer


def probe_episodes(cfg: Config, seed: int) -> tuple[list[TensorDict], list[TensorDict], ActionSpec]:
    """`cfg.probe_episodes` random-action episodes of `cfg.env`, split 3/4 to fit a probe, 1/4 to score it
    (at least one each side), and the env's action spec. Each episode carries `obs (L, 3, H, W) uint8`
    and, where the env has one, `state`."""
    env = make_env(cfg.env, image_size=cfg.image_size, frame_stack=cfg.frame_stack,
                   action_repeat=cfg.action_repeat, seed=seed)
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


def pretrain(cfg: Config, *, trainer: WorldModelTrainer, replay: SequenceReplay, run: RunDir, logger: MetricsLogger,
             probe_fit: list[TensorDict], probe_score: list[TensorDict]) -> int:
    """Train for `cfg.steps` updates from `trainer.steps`; returns the final update count."""
    if trainer.steps == 0:
        logger.log(0, probe_metrics(trainer, probe_fit, probe_score))
    pending: dict[str, list[float]] = {}
    clock, last = time.time(), trainer.steps
    bar = tqdm(total=cfg.steps, initial=trainer.steps, unit="update", dynamic_ncols=True, disable=None,
               desc=f"pretrain {cfg.env} {cfg.objective}")
    while trainer.steps < cfg.steps:
        for name, value in trainer.update(replay.sample(cfg.batch_size)).items():
            pending.setdefault(name, []).append(value)
        bar.update(1)
        step = trainer.steps
        if step % cfg.log_every == 0 or step == cfg.steps:
            record = {name: float(np.mean(values)) for name, values in pending.items()}
            record["train/updates_per_second"] = (step - last) / max(time.time() - clock, 1e-9)
            logger.log(step, record)
            pending.clear()
            clock, last = time.time(), step
        if step % cfg.eval_every == 0 or step == cfg.steps:
            probe = probe_metrics(trainer, probe_fit, probe_score)
            logger.log(step, probe)
            if "probe/r2" in probe:
                bar.set_postfix(probe_r2=f"{probe['probe/r2']:.3f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            state = {"config": cfg.to_dict(), "env": cfg.env, "trainer": trainer.state_dict(),
                     "rng": {"torch": torch.get_rng_state()}}
            run.save_checkpoint(step, state, keep=cfg.keep_checkpoints)
    bar.close()
    return trainer.steps
