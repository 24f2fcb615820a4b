"""A training run assembled from its config: envs, replay, world model, trainer, agent, run folder.

    session = TrainingSession.build(cfg)     # joins torchrun's process group when there is one
    try:
        counters = session.train()
    finally:
        session.close()

`scripts/train.py` and `scripts/transfer.py` are this plus their messages. Everything that can
fail on a bad input (env id, encoder file, config clash) fails before the run folder is written.
Under torchrun each rank collects with its own seeds (`seed + RANK_SEED_STRIDE * rank`), starts
from the same weights, and trains with DistributedDataParallel; rank 0 owns the run folder.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from agents.agent import PlanningAgent
from agents.analysis.imagine import ImaginedVideos
from agents.analysis.metrics import load_metrics
from agents.analysis.plots import plot_runs, select_keys
from agents.analysis.probe import ProbeAtEvaluation, probe_episodes, probe_metrics
from agents.episodes import episode_frames, eval_conditions, make_envs
from agents.random import RandomAgent
from agents.training.assembly import (
    build_agent,
    build_model,
    build_replay,
    build_trainer,
    checked_device,
)
from agents.training.distributed import Distributed, init_distributed, rank_device
from agents.training.loop import Counters, restore, train
from agents.training.memory import retain_freed_memory
from agents.training.pretrained import PretrainedEncoder, load_pretrained_encoder
from agents.training.runs import MetricsLogger, RunDir
from agents.training.stop import Interrupted
from envs import EnvError
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.precision import NonFiniteLossError, resolve_precision
from worldmodel.replay import ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer

RANK_SEED_STRIDE = 1_000
"""Rank r collects, explores and plans with seed + RANK_SEED_STRIDE * r."""


class NullLogger:
    """What ranks other than 0 log to."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrainingSession:
    cfg: Config
    ctx: Distributed
    run: RunDir
    envs: object
    eval_envs: object | None
    eval_also: dict[str, object]
    """`Config.eval_also`'s conditions: label -> their own evaluation envs (rank 0 only)."""
    spec: ActionSpec
    replay: SequenceReplay
    model: WorldModel
    trainer: WorldModelTrainer
    agent: PlanningAgent
    explorer: RandomAgent
    np_rng: np.random.Generator
    counters: Counters
    logger: MetricsLogger | NullLogger
    device: torch.device
    pretrained: PretrainedEncoder | None = None

    @classmethod
    def build(cls, cfg: Config) -> TrainingSession:
        """Everything a run needs, checked before the run folder is written; a start that fails after
        that removes the folder it made (a resumed folder is left as it was)."""
        ctx = init_distributed(cfg.device)
        check_sequences_fit(cfg)
        seed = cfg.seed + RANK_SEED_STRIDE * ctx.rank
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        envs = make_envs(cfg, cfg.num_envs, seed)  # a bad env id fails before any folder is written
        eval_envs = run = None
        eval_also: dict[str, object] = {}
        try:
            # Evaluation runs in parallel too, each env playing its share of the episodes: eval_envs of them
            # in this process (one batched plan per step), else num_envs as the collection runs them.
            eval_count = min(cfg.eval_envs or cfg.num_envs, cfg.eval_episodes)
            eval_envs = (make_envs(cfg, eval_count, cfg.seed + 1, asynchronous=False if cfg.eval_envs else None)
                         if ctx.main else None)
            spec = ActionSpec.from_space(envs.single_action_space)
            if ctx.main:  # the same count and seeds as the clean evaluation's envs
                for condition in eval_conditions(cfg, spec):
                    eval_also[condition.label] = make_envs(condition.cfg, eval_count, cfg.seed + 1, perturb=condition.perturb,
                                                           asynchronous=False if cfg.eval_envs else None)
            _, info = envs.reset(seed=seed)
            state = info.get("state")
            state_dim = 0 if state is None else int(np.asarray(state).reshape(cfg.num_envs, -1).shape[1])
            pretrained = load_pretrained_encoder(cfg.encoder_from) if cfg.encoder_from and not cfg.resume else None

            device = rank_device(checked_device(cfg), ctx)  # before the folder, like the env id
            if ctx.main:
                run = RunDir.open(cfg.run_dir, write=True) if cfg.resume else RunDir.create(cfg)
            path = ctx.broadcast(str(run.path) if run else None)
            run = run or RunDir(path)
            replay = build_replay(cfg, spec, state_dim, device,
                                  scratch=run.path / "replay" / (f"rank{ctx.rank}" if ctx.enabled else ""))
            model = build_model(cfg, spec, device, pretrained)
            trainer = build_trainer(cfg, model, device)
            if ctx.enabled:
                # Gradients are averaged across ranks during backward; rank 0's weights are broadcast first.
                trainer.forward = DistributedDataParallel(
                    model, device_ids=[device.index] if device.type == "cuda" else None)
            if cfg.compile:
                trainer.compile()  # around the DDP wrapper when there is one; the planner compiles itself
            if ctx.rank > 0:
                torch.manual_seed(seed)  # each rank's own replay sampling
            agent = build_agent(cfg, model, trainer, device, seed=seed + 1)
            explorer = RandomAgent(spec, seed=seed)
            np_rng = np.random.default_rng(seed)
            counters = restore(run, cfg, agent, explorer, replay, np_rng, ctx) if cfg.resume else Counters()
            if cfg.resume and ctx.main:
                run.write_config(cfg)  # the keys a resume may change (steps, intervals, device) stay true
            logger = (MetricsLogger(run, tensorboard=cfg.tensorboard,
                                    resume_step=counters.env_steps if cfg.resume else None)
                      if ctx.main else NullLogger())
        except BaseException:
            envs.close()
            for other in [eval_envs, *eval_also.values()]:
                if other is not None:
                    other.close()
            if run is not None and ctx.main:
                run.discard()
            raise
        return cls(cfg, ctx, run, envs, eval_envs, eval_also, spec, replay, model, trainer, agent, explorer, np_rng, counters,
                   logger, device, pretrained)

    def describe(self) -> str:
        """One line about the run: folder, size, device, precision, planner (and transfer, ranks)."""
        text = (f"run folder: {self.run.path}  ({sum(p.numel() for p in self.model.parameters()):,} parameters, "
                f"{self.device}, {resolve_precision(self.device, self.cfg.precision)}, replay on {self.replay.device}, planner {self.cfg.planner}")
        if self.cfg.encoder_from:
            text += f", encoder from {self.cfg.encoder_from} ({self.cfg.encoder_mode})"
        if self.ctx.enabled:
            text += f", {self.ctx.world} processes"
        return text + ")"

    def train(self) -> Counters:
        """Run the online loop to `cfg.steps`; at each evaluation also `probe/r2` (`cfg.probe_online`)
        and an imagined-rollout video (`cfg.video`)."""
        hooks: list = []
        if self.ctx.main:
            if self.cfg.probe_online:
                hooks.append(ProbeAtEvaluation(self.cfg, self.trainer))
            if self.cfg.video:
                hooks.append(ImaginedVideos(self.cfg, self.agent, self.spec, self.replay, self.run.videos))

        def on_evaluate(step: int, episodes: list) -> dict[str, float]:
            metrics: dict[str, float] = {}
            for hook in hooks:
                metrics.update(hook(step, episodes))
            return metrics

        try:
            self.counters = train(self.cfg, agent=self.agent, envs=self.envs, eval_envs=self.eval_envs,
                                  replay=self.replay, run=self.run, logger=self.logger, spec=self.spec,
                                  counters=self.counters, np_rng=self.np_rng, explorer=self.explorer,
                                  on_evaluate=on_evaluate if hooks else None, ctx=self.ctx, eval_also=self.eval_also)
        finally:
            for hook in hooks:
                if hasattr(hook, "close"):
                    hook.close()
        return self.counters

    def close(self) -> None:
        self.logger.close()
        self.envs.close()
        for other in [self.eval_envs, *self.eval_also.values()]:
            if other is not None:
                other.close()
        self.run.unlock()
        self.ctx.close()


def probe_before_training(session: TrainingSession) -> None:
    """Log `probe/r2` of the encoder the run starts from (transferred or fresh), on its env, at step 0:
    what a linear probe reads of the true state before any training (transfer.py's first line)."""
    if not session.ctx.main or session.counters.env_steps > 0:
        return
    cfg = session.cfg
    episodes, _ = probe_episodes(cfg, seed=cfg.seed + 1_000)
    probe = probe_metrics(session.trainer, episodes)
    session.logger.log(0, probe)
    if "probe/r2" in probe:
        print(f"probe/r2 of the {'transferred' if cfg.encoder_from else 'fresh'} encoder on {cfg.env} "
              f"before training: {probe['probe/r2']:.3f}", file=sys.stderr)


def check_sequences_fit(cfg: Config) -> None:
    """Refuse a `seq_len` no episode of `cfg.env` can hold: the replay could never sample a
    sequence, and the run would end without one update."""
    frames = episode_frames(cfg)
    if frames is not None and cfg.sample_len > frames:
        raise ConfigError(
            f"seq_len={cfg.seq_len} needs {cfg.sample_len} frames per sequence (with history={cfg.history}), but "
            f"episodes of {cfg.env} hold at most {frames} (its time limit at action_repeat={cfg.action_repeat}): "
            f"no sequence could ever be sampled. Lower seq_len to at most {frames - cfg.history + 1}.")


def run_training(prog: str, make_config: Callable[[], Config],
                 before_training: Callable[[TrainingSession], None] | None = None) -> int:
    """What train.py and transfer.py do: build the session, train, plot; returns the exit status
    (0 done, 2 a bad input, with one `prog: error: ...` line, 3 a non-finite loss, 128 + the signal
    number when SIGINT or SIGTERM stopped it after a checkpoint)."""
    session = None
    retain_freed_memory()
    try:
        session = TrainingSession.build(make_config())
        try:
            if session.ctx.main:
                print(session.describe(), file=sys.stderr)
            if before_training is not None:
                before_training(session)
            counters = session.train()
        finally:
            session.close()
        if not session.ctx.main:
            return 0
        runs = {session.run.path.name: load_metrics(session.run.path)}
        plot = plot_runs(runs, select_keys(runs), session.run.path / "plots" / "learning_curves.png")
    except NonFiniteLossError as e:
        latest = session.run.latest_checkpoint() if session else None
        print(f"{prog}: stopped: {e} Last good checkpoint: {latest or 'none yet'}.", file=sys.stderr)
        return 3
    except Interrupted as e:
        print(f"{prog}: {e}; continue with resume=true run_dir={session.run.path}", file=sys.stderr)
        return e.exit_status
    except (ConfigError, EnvError, CheckpointError, ReplayError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"done: {counters.env_steps} environment steps, {counters.episodes} episodes -> {session.run.path} "
          f"(curves: {plot})")
    return 0


__all__ = ["RANK_SEED_STRIDE", "TrainingSession", "probe_before_training", "run_training"]
