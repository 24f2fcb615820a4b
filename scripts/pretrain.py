"""Pretrain a world model offline on pixel episodes, logging every loss term and the linear probe.

    python scripts/pretrain.py env=Pendulum-v1 objective=contrastive steps=2000 precision=bf16 run_dir=runs/pre
    python scripts/pretrain.py replay_from=runs/x/checkpoints/step_000020000/replay steps=5000
    python scripts/pretrain.py run_dir=runs/pre resume=true steps=4000

Here `steps` counts gradient updates. Data: `collect_steps` environment steps of uniformly random
actions (or a saved replay with `replay_from=`). The probe: `probe_episodes` separate random
episodes, 3/4 to fit a ridge regression from latents to the env's state, 1/4 to score it;
`probe/r2` is logged at step 0 and every `eval_every` updates. Writes `world_model.pt` and
`encoder.pt` (loadable with `WorldModel.load` / `WorldModel.load_encoder`) into the run folder.
"""

from __future__ import annotations

import sys

import torch

from agents.collect import Collector
from agents.pretrain import pretrain, probe_episodes
from agents.random import RandomAgent
from agents.runs import MetricsLogger, RunDir, config_from_cli
from envs import EnvError, make_vector_env
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.precision import NonFiniteLossError, resolve_device
from worldmodel.replay import ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer


def collect(cfg: Config, spec: ActionSpec, state_dim: int) -> SequenceReplay:
    """`collect_steps` environment steps of random actions, from `num_envs` envs."""
    replay = SequenceReplay(max(cfg.collect_steps // cfg.action_repeat + 16 * cfg.num_envs, cfg.sample_len * 4),
                            cfg.sample_len, (3, cfg.image_size, cfg.image_size), spec.dim,
                            num_envs=cfg.num_envs, state_dim=state_dim)
    envs = make_vector_env(cfg.env, cfg.num_envs, seed=cfg.seed, asynchronous=cfg.num_envs > 1,
                           image_size=cfg.image_size, frame_stack=cfg.frame_stack, action_repeat=cfg.action_repeat)
    collector, policy, done = Collector(envs, spec, replay, cfg.action_repeat, cfg.seed), RandomAgent(spec, cfg.seed), 0
    try:
        while done < cfg.collect_steps:
            done += collector.step(policy.act(collector.observation())).env_steps
    finally:
        envs.close()
    return replay


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = config_from_cli(argv)
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        probe_fit, probe_score, spec = probe_episodes(cfg, seed=cfg.seed + 1_000)  # a bad env fails before any folder
        state_dim = int(probe_fit[0]["state"].shape[-1]) if "state" in probe_fit[0].keys() else 0

        run = RunDir.open(cfg.run_dir) if cfg.resume else RunDir.create(cfg)
        if cfg.resume:
            replay = SequenceReplay.from_saved(run.path / "replay", cfg.sample_len)
        elif cfg.replay_from:
            replay = SequenceReplay.from_saved(cfg.replay_from, cfg.sample_len)
            replay.save(run.path / "replay")
        else:
            replay = collect(cfg, spec, state_dim)
            replay.save(run.path / "replay")
        if replay.action_dim != spec.dim:
            raise ReplayError(f"the replay holds actions of size {replay.action_dim}, {cfg.env} has {spec.dim}.")

        model = WorldModel(cfg, spec.dim).to(device)
        trainer = WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip)
        if cfg.compile:
            trainer.compile()
        if cfg.resume:
            _, state = run.load_latest()
            trainer.load_state_dict(state["trainer"])
            torch.set_rng_state(state["rng"]["torch"])
        logger = MetricsLogger(run, tensorboard=cfg.tensorboard, resume_step=trainer.steps if cfg.resume else None)
        print(f"run folder: {run.path}  ({len(replay)} transitions, {sum(p.numel() for p in model.parameters()):,} "
              f"parameters, {device}, {cfg.precision})", file=sys.stderr)
        try:
            pretrain(cfg, trainer=trainer, replay=replay, run=run, logger=logger,
                     probe_fit=probe_fit, probe_score=probe_score)
        finally:
            logger.close()
        model.save(run.path / "world_model.pt")
        model.save_encoder(run.path / "encoder.pt")
    except NonFiniteLossError as e:
        latest = run.latest_checkpoint()
        print(f"pretrain.py: stopped: {e} Last good checkpoint: {latest or 'none yet'}.", file=sys.stderr)
        return 3
    except (ConfigError, EnvError, CheckpointError, ReplayError, ValueError) as e:
        print(f"pretrain.py: error: {e}", file=sys.stderr)
        return 2
    print(f"done: {trainer.steps} updates -> {run.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
