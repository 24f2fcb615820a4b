"""Train an agent online from pixels and leave a run folder.

    python scripts/train.py                                   # cpu preset, pixel Pendulum-v1
    python scripts/train.py preset=debug env=CartPole-v1 seed=3 run_dir=runs/x
    python scripts/train.py run_dir=runs/x resume=true         # continue a stopped run
    python scripts/train.py help                               # every key, with its doc

The agent plans in the world model's latent space (`planner=mppi|cem`), after `seed_steps` of
uniformly random actions; the world model (and its value head and policy prior) trains online from
the replay. Checkpoints hold everything needed to resume exactly: model, optimiser, scaler,
replay, counters and RNG states.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from agents.agent import PlanningAgent
from agents.collect import record_episodes
from agents.imagine import write_imagined_video
from agents.loop import Counters, restore, train
from agents.plots import load_metrics, plot_runs, select_keys
from agents.random import RandomAgent
from agents.runs import MetricsLogger, RunDir, config_from_cli
from envs import EnvError, make_env, make_vector_env
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.precision import NonFiniteLossError, resolve_device
from worldmodel.replay import ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer


class ImaginedVideos:
    """At each evaluation: record one episode with the agent (exploration off), imagine it open loop
    from a few real frames, and write `videos/imagined_<step>.mp4` with its per-step errors. The
    decoder (fitted on frozen latents unless the model's own can show pixels) is kept and refined."""

    def __init__(self, cfg: Config, agent: PlanningAgent, spec: ActionSpec, replay: SequenceReplay, run: RunDir):
        self.cfg, self.agent, self.spec, self.replay, self.run = cfg, agent, spec, replay, run
        self.env = make_env(cfg.env, image_size=cfg.image_size, frame_stack=cfg.frame_stack,
                            action_repeat=cfg.action_repeat, seed=cfg.seed + 2)
        self.decoder = None

    def _policy(self, obs: torch.Tensor, first: bool) -> torch.Tensor:
        if first:
            self.agent.reset(torch.ones(1, dtype=torch.bool), eval=True)
        return self.agent.act(obs, eval=True)

    def __call__(self, step: int) -> dict[str, float]:
        episode = record_episodes(self.env, self.spec, 1, seed=self.cfg.seed + 3 + step, policy=self._policy)
        horizon = min(30, len(episode[0]) - 5)
        if horizon < 1:
            return {}  # an episode too short to imagine anything (e.g. an early CartPole fall)
        self.decoder, errors = write_imagined_video(
            self.agent.model, self.cfg, episode, self.run.videos / f"imagined_{step:09d}.mp4",
            decoder=self.decoder, replay=self.replay, context=4, horizon=horizon,
            decoder_steps=500 if self.decoder is None else 100, seed=self.cfg.seed)
        return errors["metrics"]


def build_envs(cfg: Config, seed: int, num_envs: int):
    return make_vector_env(
        cfg.env, num_envs, seed=seed, asynchronous=num_envs > 1,
        image_size=cfg.image_size, frame_stack=cfg.frame_stack, action_repeat=cfg.action_repeat,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = config_from_cli(argv)
        torch.manual_seed(cfg.seed)
        envs = build_envs(cfg, cfg.seed, cfg.num_envs)  # fails before any folder is written
        eval_envs = build_envs(cfg, cfg.seed + 1, 1)
        spec = ActionSpec.from_space(envs.single_action_space)
        _, info = envs.reset(seed=cfg.seed)
        state = info.get("state")
        state_dim = 0 if state is None else int(np.asarray(state).reshape(cfg.num_envs, -1).shape[1])

        run = RunDir.open(cfg.run_dir) if cfg.resume else RunDir.create(cfg)
        replay = SequenceReplay(
            cfg.buffer_size, cfg.sample_len, (3, cfg.image_size, cfg.image_size), spec.dim,
            num_envs=cfg.num_envs, state_dim=state_dim,
            scratch_dir=run.path / "replay" if cfg.buffer_on_disk else None,
        )
        device = resolve_device(cfg.device)
        model = WorldModel(cfg, spec).to(device)
        trainer = WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip)
        agent = PlanningAgent(cfg, model, trainer, device, seed=cfg.seed + 1)
        explorer = RandomAgent(spec, seed=cfg.seed)
        np_rng = np.random.default_rng(cfg.seed)
        counters = Counters()
        if cfg.resume:
            counters = restore(run, cfg, agent, explorer, replay, np_rng)
        logger = MetricsLogger(run, tensorboard=cfg.tensorboard,
                               resume_step=counters.env_steps if cfg.resume else None)
        print(f"run folder: {run.path}  ({sum(p.numel() for p in model.parameters()):,} parameters, {device}, "
              f"{cfg.precision}, planner {cfg.planner})", file=sys.stderr)
        try:
            videos = ImaginedVideos(cfg, agent, spec, replay, run) if cfg.video else None
            counters = train(cfg, agent=agent, envs=envs, eval_envs=eval_envs, replay=replay, run=run,
                             logger=logger, spec=spec, counters=counters, np_rng=np_rng, explorer=explorer,
                             on_evaluate=videos)
        finally:
            logger.close()
            envs.close()
            eval_envs.close()
        runs = {run.path.name: load_metrics(run.path)}
        plot = plot_runs(runs, select_keys(runs), run.path / "plots" / "learning_curves.png")
    except NonFiniteLossError as e:
        print(f"train.py: stopped: {e} Last good checkpoint: {run.latest_checkpoint() or 'none yet'}.",
              file=sys.stderr)
        return 3
    except (ConfigError, EnvError, CheckpointError, ReplayError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    print(f"done: {counters.env_steps} environment steps, {counters.episodes} episodes -> {run.path} (curves: {plot})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
