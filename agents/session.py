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
from agents.distributed import Distributed, init_distributed, rank_device
from agents.imagine import ImaginedVideos
from agents.loop import Counters, restore, train
from agents.plots import load_metrics, plot_runs, select_keys
from agents.random import RandomAgent
from agents.runs import MetricsLogger, RunDir
from agents.transfer import (
    PretrainedEncoder,
    encoder_lr,
    load_pretrained_encoder,
    transfer_into,
)
from envs import EnvError, make_vector_env
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.precision import (
    NonFiniteLossError,
    replay_device,
    resolve_device,
    resolve_precision,
)
from worldmodel.replay import ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer

RANK_SEED_STRIDE = 1_000
"""Rank r collects, explores and plans with seed + RANK_SEED_STRIDE * r."""


def build_envs(cfg: Config, seed: int, num_envs: int):
    """`num_envs` pixel envs as one `gymnasium.vector` env (asynchronous workers when more than one)."""
    return make_vector_env(cfg.env, num_envs, seed=seed, asynchronous=num_envs > 1, image_size=cfg.image_size,
                           frame_stack=cfg.frame_stack, action_repeat=cfg.action_repeat)


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
        ctx = init_distributed(cfg.device)
        seed = cfg.seed + RANK_SEED_STRIDE * ctx.rank
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        envs = build_envs(cfg, seed, cfg.num_envs)  # a bad env id fails before any folder is written
        # Evaluation runs in parallel too, each env playing its share of the episodes.
        eval_envs = build_envs(cfg, cfg.seed + 1, min(cfg.num_envs, cfg.eval_episodes)) if ctx.main else None
        spec = ActionSpec.from_space(envs.single_action_space)
        _, info = envs.reset(seed=seed)
        state = info.get("state")
        state_dim = 0 if state is None else int(np.asarray(state).reshape(cfg.num_envs, -1).shape[1])
        pretrained = load_pretrained_encoder(cfg.encoder_from) if cfg.encoder_from and not cfg.resume else None

        device = rank_device(checked_device(cfg), ctx)  # before the folder, like the env id
        run = None
        if ctx.main:
            run = RunDir.open(cfg.run_dir) if cfg.resume else RunDir.create(cfg)
        run = RunDir(ctx.broadcast(str(run.path) if run else None))
        frame = (3, cfg.image_size, cfg.image_size)
        storage = replay_device(cfg.replay_device, device, cfg.buffer_size * SequenceReplay.row_bytes(
            frame, spec.dim, state_dim), on_disk=cfg.buffer_on_disk)
        scratch = run.path / "replay" / (f"rank{ctx.rank}" if ctx.enabled else "")
        replay = SequenceReplay(cfg.buffer_size, cfg.sample_len, frame, spec.dim, num_envs=cfg.num_envs,
                                state_dim=state_dim, scratch_dir=scratch if cfg.buffer_on_disk else None,
                                device=storage)
        model = WorldModel(cfg, spec).to(device)
        if pretrained is not None:
            transfer_into(model, pretrained)
        trainer = WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip, encoder_lr=encoder_lr(cfg))
        if ctx.enabled:
            # Gradients are averaged across ranks during backward; rank 0's weights are broadcast first.
            trainer.forward = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            trainer.compile()  # around the DDP wrapper when there is one; the planner compiles itself
        if ctx.rank > 0:
            torch.manual_seed(seed)  # each rank's own replay sampling
        agent = PlanningAgent(cfg, model, trainer, device, seed=seed + 1)
        explorer = RandomAgent(spec, seed=seed)
        np_rng = np.random.default_rng(seed)
        counters = restore(run, cfg, agent, explorer, replay, np_rng, ctx) if cfg.resume else Counters()
        logger = (MetricsLogger(run, tensorboard=cfg.tensorboard, resume_step=counters.env_steps if cfg.resume else None)
                  if ctx.main else NullLogger())
        return cls(cfg, ctx, run, envs, eval_envs, spec, replay, model, trainer, agent, explorer, np_rng, counters,
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
        """Run the online loop to `cfg.steps`; imagined-rollout videos at each evaluation when `cfg.video`."""
        videos = None
        if self.cfg.video and self.ctx.main:
            videos = ImaginedVideos(self.cfg, self.agent, self.spec, self.replay, self.run.videos)
        try:
            self.counters = train(self.cfg, agent=self.agent, envs=self.envs, eval_envs=self.eval_envs,
                                  replay=self.replay, run=self.run, logger=self.logger, spec=self.spec,
                                  counters=self.counters, np_rng=self.np_rng, explorer=self.explorer,
                                  on_evaluate=videos, ctx=self.ctx)
        finally:
            if videos is not None:
                videos.close()
        return self.counters

    def close(self) -> None:
        self.logger.close()
        self.envs.close()
        if self.eval_envs is not None:
            self.eval_envs.close()
        self.ctx.close()


def checked_device(cfg: Config) -> torch.device:
    """The training device `cfg.device` names, with `cfg.precision` and `cfg.replay_device` checked
    against this machine (CUDA asked for but absent, fp16 on the CPU): a ConfigError, not a traceback."""
    try:
        device = resolve_device(cfg.device)
        resolve_precision(device, cfg.precision)
        if cfg.replay_device != "auto":
            resolve_device(cfg.replay_device)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return device


def run_training(prog: str, make_config: Callable[[], Config],
                 before_training: Callable[[TrainingSession], None] | None = None) -> int:
    """What train.py and transfer.py do: build the session, train, plot; returns the exit status
    (0 done, 2 a bad input, with one `prog: error: ...` line, 3 a non-finite loss)."""
    session = None
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
    except (ConfigError, EnvError, CheckpointError, ReplayError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"done: {counters.env_steps} environment steps, {counters.episodes} episodes -> {session.run.path} "
          f"(curves: {plot})")
    return 0


__all__ = ["RANK_SEED_STRIDE", "TrainingSession", "build_envs", "run_training"]
