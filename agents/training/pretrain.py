"""Offline pretraining of the world model on a fixed replay, with the linear probe as the yardstick.

    python scripts/pretrain.py env=Pendulum-v1 pretrain_updates=2000     # what run_pretraining does

Its x-axis is gradient updates: `pretrain_updates` of them, logged every `pretrain_log_every`,
probed every `pretrain_probe_every`, checkpointed every `pretrain_checkpoint_every` (online training
counts environment steps with `steps`, `log_every`, `eval_every` and `checkpoint_every`, which
pretraining refuses). `probe/r2` is logged at update 0 (the untrained encoder) and at every probe,
so a run shows what the self-supervised objective bought.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.analysis.probe import probe_episodes, probe_metrics
from agents.episodes import make_envs
from agents.random import RandomAgent
from agents.training.assembly import (
    build_model,
    build_trainer,
    checked_device,
    resolve_config,
)
from agents.training.collect import Collector
from agents.training.memory import retain_freed_memory
from agents.training.runs import PRETRAIN, MetricsLogger, RunDir
from agents.training.stop import Interrupted, StopOnSignal
from envs import EnvError, suite_defaults
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import split_pairs
from worldmodel.config import Config, ConfigError
from worldmodel.precision import NonFiniteLossError
from worldmodel.replay import MixedReplay, ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer

ONLINE_ONLY = {"steps": "pretrain_updates", "eval_every": "pretrain_probe_every",
               "checkpoint_every": "pretrain_checkpoint_every", "log_every": "pretrain_log_every"}
"""Keys that count environment steps of online training, and pretraining's own key for each."""


def pretrain(cfg: Config, *, trainer: WorldModelTrainer, replay: SequenceReplay | MixedReplay, run: RunDir,
             logger: MetricsLogger, probe: Callable[[], dict[str, float]]) -> int:
    """Train for `cfg.pretrain_updates` updates from `trainer.steps`, logging `probe()` (the probe's
    metrics of the current encoder) at update 0 and every `pretrain_probe_every`; returns the final
    update count. A first SIGINT/SIGTERM checkpoints at the end of the update and raises `Interrupted`."""
    total = cfg.pretrain_updates
    if trainer.steps == 0:
        logger.log(0, probe())
    pending: dict[str, list[float]] = {}
    clock, last = time.time(), trainer.steps
    bar = tqdm(total=total, initial=trainer.steps, unit="update", dynamic_ncols=True, disable=None,
               desc=f"pretrain {cfg.env} {cfg.objective}")
    with StopOnSignal() as stop:
        while trainer.steps < total:
            for name, value in trainer.update(replay.sample(cfg.batch_size)).items():
                pending.setdefault(name, []).append(value)
            bar.update(1)
            step = trainer.steps
            if step % cfg.pretrain_log_every == 0 or step == total:
                record = {name: float(np.mean(values)) for name, values in pending.items()}
                record["train/updates_per_second"] = (step - last) / max(time.time() - clock, 1e-9)
                logger.log(step, record)
                pending.clear()
                clock, last = time.time(), step
            if step % cfg.pretrain_probe_every == 0 or step == total:
                probed = probe()
                logger.log(step, probed)
                if "probe/r2" in probed:
                    bar.set_postfix(probe_r2=f"{probed['probe/r2']:.3f}")
            if step % cfg.pretrain_checkpoint_every == 0 or step == total or stop.requested:
                state = {"config": cfg.to_dict(), "env": cfg.env, "trainer": trainer.state_dict(),
                         "rng": {"torch": torch.get_rng_state()}}
                run.save_checkpoint(step, state, PRETRAIN, keep=cfg.keep_checkpoints)
            if stop.requested:
                bar.close()
                raise Interrupted(stop.signal, step, run.latest_checkpoint(), unit="update")
    bar.close()
    return trainer.steps


def collect_random(cfg: Config, spec: ActionSpec, state_dim: int) -> SequenceReplay:
    """A replay of `cfg.collect_steps` environment steps of uniformly random actions, from `num_envs` envs."""
    replay = SequenceReplay(max(cfg.collect_steps // cfg.action_repeat + 16 * cfg.num_envs, cfg.sample_len * 4),
                            cfg.sample_len, (3, cfg.image_size, cfg.image_size), spec.dim,
                            num_envs=cfg.num_envs, state_dim=state_dim)
    envs = make_envs(cfg, cfg.num_envs, seed=cfg.seed)
    collector, policy, done = Collector(envs, spec, replay, cfg.action_repeat, cfg.seed), RandomAgent(spec, cfg.seed), 0
    try:
        while done < cfg.collect_steps:
            done += collector.step(policy.act(collector.observation())).env_steps
    finally:
        envs.close()
    return replay


def pretraining_config(argv: list[str]) -> Config:
    """The config of a pretraining command line; the online loop's step-counted keys are refused.
    `env=` may name several environments, comma-separated (see `environment_configs`)."""
    given = split_pairs(argv)
    for key, instead in ONLINE_ONLY.items():
        if key in given:
            raise ConfigError(f"{key}= counts environment steps of online training (train.py); pretraining "
                              f"counts gradient updates: use {instead}= instead.")
    return resolve_config(argv, several_envs=True)


def short_name(env_id: str) -> str:
    """`dm_control/cartpole-swingup-v0` -> `cartpole-swingup`, `Pendulum-v1` -> `Pendulum` (metric names)."""
    return re.sub(r"-v\d+$", "", env_id.split("/")[-1])


def environment_configs(cfg: Config, argv: list[str]) -> list[Config]:
    """One config per environment of `cfg.env` (comma-separated ids), each with its suite's protocol
    (a PlaNet task's own action repeat) unless the command line sets the key; on resume, the action
    repeats the run's data was collected with. One environment: `[cfg]` itself."""
    ids = [part.strip() for part in cfg.env.split(",")]
    if len(ids) == 1:
        return [cfg]
    if not all(ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"env={cfg.env!r}: name each environment once, comma-separated with no empty entries.")
    if cfg.replay_from:
        raise ConfigError("replay_from= holds one environment's replay; with several envs pretrain.py collects "
                          "each one's data itself: drop replay_from= or name one env.")
    if cfg.resume:
        sources = MixedReplay.saved_sources(Path(cfg.run_dir) / "replay")
        return [cfg.replace(env=s["name"], action_repeat=s["action_repeat"]) for s in sources]
    explicit, configs = set(split_pairs(argv)), []
    for env_id in ids:
        protocol, note = suite_defaults(env_id)
        if note:
            print(note, file=sys.stderr)
        configs.append(cfg.replace(env=env_id, **{k: v for k, v in protocol.items() if k not in explicit}))
    return configs


class EnvProbes:
    """The linear probe of one or several environments: per env, `probe_episodes` random-action
    episodes (the probe 4-fold cross-validated over them), recorded once. Called, it gives `probe/r2` (the mean over the
    envs whose episodes carry a state) and, with several envs, `probe/r2_<env>` for each."""

    def __init__(self, configs: list[Config], seed: int):
        self.names = [short_name(c.env) for c in configs]
        self.episodes, self.specs = [], []
        for c in configs:  # a bad env id fails here, before any run folder is written
            episodes, spec = probe_episodes(c, seed=seed)
            self.episodes.append(episodes)
            self.specs.append(spec)
        self.trainer: WorldModelTrainer | None = None

    def state_dim(self, i: int = 0) -> int:
        first = self.episodes[i][0]
        return int(first["state"].shape[-1]) if "state" in first.keys() else 0

    def __call__(self) -> dict[str, float]:
        per_env = [probe_metrics(self.trainer, episodes) for episodes in self.episodes]
        if len(per_env) == 1:
            return per_env[0]
        out = {f"probe/r2_{name}": m["probe/r2"] for name, m in zip(self.names, per_env, strict=True) if m}
        if out:
            out["probe/r2"] = float(np.mean(list(out.values())))
        return out


def mixed_action_spec(configs: list[Config], specs: list[ActionSpec]) -> ActionSpec:
    """The action spec one model over several envs uses: continuous, of the largest action size
    (the others' actions zero-padded). Discrete envs are refused: their one-hot actions mean nothing padded."""
    discrete = [c.env for c, s in zip(configs, specs, strict=True) if s.kind != "continuous"]
    if discrete:
        raise ConfigError(f"pretraining on several envs takes continuous actions only; {', '.join(discrete)} "
                          "has discrete ones: pretrain it on its own, or leave it out.")
    return ActionSpec("continuous", max(s.dim for s in specs))


def collect_mixed(configs: list[Config], specs: list[ActionSpec]) -> MixedReplay:
    """`collect_steps` random-action environment steps of each env (at its own action repeat), as one
    `MixedReplay` that samples every env equally."""
    replays = [collect_random(c, s, state_dim=0) for c, s in zip(configs, specs, strict=True)]
    facts = [{"action_repeat": c.action_repeat, "action_dim": s.dim} for c, s in zip(configs, specs, strict=True)]
    return MixedReplay(replays, [c.env for c in configs], facts)


def run_pretraining(prog: str, argv: list[str]) -> int:
    """What pretrain.py does: data (collected, or `replay_from=`), a run folder, `pretrain_updates`
    updates with the probe, then `world_model.pt` and `encoder.pt`. With several envs (`env=a,b,...`)
    the data is each env's random-action steps, sampled equally (`MixedReplay`), and the probe is
    each env's. Everything a bad input can fail (env id, device, `replay_from=`) is checked before
    the run folder is written, and a start that fails after that removes the folder it made. Returns
    the exit status (0 done, 2 a bad input with one `prog: error: ...` line, 3 a non-finite loss,
    128 + the signal number when SIGINT or SIGTERM stopped it after a checkpoint)."""
    run = trainer = None
    retain_freed_memory()
    try:
        cfg = pretraining_config(argv)
        torch.manual_seed(cfg.seed)
        device = checked_device(cfg)
        configs = environment_configs(cfg, argv)
        probes = EnvProbes(configs, seed=cfg.seed + 1_000)
        several = len(configs) > 1
        spec = mixed_action_spec(configs, probes.specs) if several else probes.specs[0]
        given = None
        if cfg.replay_from and not cfg.resume:
            given = SequenceReplay.from_saved(cfg.replay_from, cfg.sample_len)
            check_replay(given, cfg, spec, f"replay_from={cfg.replay_from}")

        run = RunDir.open(cfg.run_dir, write=True) if cfg.resume else RunDir.create(cfg)
        try:
            if cfg.resume:
                _, state = run.load_resumable(PRETRAIN)  # refuses an online run before reading its data
                saved = run.path / "replay"
                replay = (MixedReplay if several else SequenceReplay).from_saved(saved, cfg.sample_len)
            else:
                if several:
                    replay = collect_mixed(configs, probes.specs)
                else:
                    replay = given if given is not None else collect_random(cfg, spec, probes.state_dim())
                replay.save(run.path / "replay")
            model = build_model(cfg, spec, device)
            trainer = build_trainer(cfg, model, device)
            probes.trainer = trainer
            if cfg.compile:
                trainer.compile()
            if cfg.resume:
                trainer.load_state_dict(state["trainer"])
                torch.set_rng_state(state["rng"]["torch"])
                run.write_config(cfg)
        except BaseException:
            run.discard()
            raise
        logger = MetricsLogger(run, tensorboard=cfg.tensorboard, resume_step=trainer.steps if cfg.resume else None)
        print(f"run folder: {run.path}  ({len(replay)} transitions, {sum(p.numel() for p in model.parameters()):,} "
              f"parameters, {device}, {cfg.precision})", file=sys.stderr)
        try:
            pretrain(cfg, trainer=trainer, replay=replay, run=run, logger=logger, probe=probes)
        finally:
            logger.close()
            run.unlock()
        model.save(run.path / "world_model.pt")
        model.save_encoder(run.path / "encoder.pt")
    except NonFiniteLossError as e:
        latest = run.latest_checkpoint() if run else None
        print(f"{prog}: stopped: {e} Last good checkpoint: {latest or 'none yet'}.", file=sys.stderr)
        return 3
    except Interrupted as e:
        print(f"{prog}: {e}; continue with resume=true run_dir={run.path}", file=sys.stderr)
        return e.exit_status
    except (ConfigError, EnvError, CheckpointError, ReplayError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"done: {trainer.steps} updates -> {run.path}")
    return 0


def check_replay(replay: SequenceReplay, cfg: Config, spec: ActionSpec, source: str) -> None:
    """Refuse a saved replay that another env (other action size or frame size) filled."""
    frame = (3, cfg.image_size, cfg.image_size)
    if replay.action_dim != spec.dim or tuple(replay.obs_shape) != frame:
        raise ReplayError(f"{source} holds actions of size {replay.action_dim} and frames {tuple(replay.obs_shape)}; "
                          f"{cfg.env} at image_size={cfg.image_size} has actions of size {spec.dim} and frames "
                          f"{frame}: pass a replay of this env, or drop replay_from= to collect one.")
