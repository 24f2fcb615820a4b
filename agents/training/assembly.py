"""One assembly: the envs, replay, model, trainer and agent of a run, built from its config, and a
run folder or checkpoint loaded back into them.

    cfg = resolve_config(["preset=debug", "env=CartPole-v1"])     # a script's command line
    spec, state_dim = env_facts(cfg)                               # agents.episodes: the run's envs
    model = build_model(cfg, spec, device)                         # (with the pretrained encoder, if any)
    trainer = build_trainer(cfg, model, device)
    agent = build_agent(cfg, model, trainer, device, seed=1)

    loaded = load_run("runs/x", checkpoint="latest")              # any run folder: online or pretraining
    loaded.agent.act(obs, eval=True)

Every entry point (train, transfer, pretrain, evaluate, imagine, the robustness check, the bench
scripts) builds and loads through these functions, so no copy can drift from the others: a
discrete env gets a discrete model wherever it is built, and a frozen or fine-tuned encoder gets
its own optimiser group wherever a checkpoint is loaded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.agent import PlanningAgent
from agents.episodes import env_facts
from agents.training.pretrained import (
    PretrainedEncoder,
    adopt_encoder_config,
    encoder_lr,
    load_pretrained_encoder,
    transfer_into,
)
from agents.training.runs import ONLINE, PRETRAIN, RunDir
from envs import suite_defaults
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_cli, split_pairs
from worldmodel.config import Config, ConfigError
from worldmodel.model import ENCODER_KEYS, WorldModel
from worldmodel.precision import replay_device, resolve_device, resolve_precision
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer

# --- the config ----------------------------------------------------------------------------
RESUMABLE = ("steps", "pretrain_updates", "eval_every", "eval_episodes", "eval_envs", "eval_also", "checkpoint_every", "keep_checkpoints",
             "log_every", "pretrain_log_every", "pretrain_probe_every", "pretrain_checkpoint_every", "tensorboard",
             "video", "device", "replay_device", "compile", "resume", "run_dir")
"""Keys a resumed run may change: how long it goes on, how often it evaluates, logs and checkpoints,
and where it runs. Every other key shaped the model, the optimiser or the data already in the
replay, so a new value could not reach them (a new `lr` would not reach the optimiser's saved state)."""


def resolve_config(argv: list[str], several_envs: bool = False) -> Config:
    """The config a script runs with: from the command line (with what the env's suite protocol
    fixes, e.g. a PlaNet task's action repeat, unless given explicitly) or, for `resume=true`, the
    run's saved config with the command line's `RESUMABLE` keys on top (e.g. a larger `steps=` to extend a run);
    another value for any other key is refused, naming it. With `encoder_from=`, the encoder's shape
    keys come from the pretrained encoder (a clashing explicit key is an error). `env=` names one
    environment unless `several_envs` (pretrain.py's comma-separated ids, each with its own protocol
    applied later by `agents.training.pretrain.environment_configs`)."""
    cfg = parse_cli(argv)
    if "," in cfg.env and not several_envs:
        raise ConfigError(f"env={cfg.env!r} names several environments: this script trains in one. Several "
                          "(comma-separated) are for scripts/pretrain.py, whose encoder transfers with encoder_from=.")
    if not cfg.resume:
        explicit = set(split_pairs(argv))
        protocol, note = suite_defaults(cfg.env) if "," not in cfg.env else ({}, None)  # e.g. a PlaNet task's action repeat
        protocol = {key: value for key, value in protocol.items() if key not in explicit}
        if protocol:
            if note:
                print(note, file=sys.stderr)
            cfg = cfg.replace(**protocol)
        if cfg.encoder_from:
            adopted = adopt_encoder_config(cfg, load_pretrained_encoder(cfg.encoder_from), explicit)
            moved = [f"{key}={getattr(adopted, key)} (the preset has {getattr(cfg, key)})" for key in ENCODER_KEYS
                     if getattr(adopted, key) != getattr(cfg, key)]
            if moved:  # e.g. an encoder of an older preset: say so rather than quietly train another shape
                print(f"The encoder from {cfg.encoder_from} sets {', '.join(moved)}: its weights fix these keys.",
                      file=sys.stderr)
            cfg = adopted
        return cfg
    saved = RunDir.open(cfg.run_dir).config()
    given = split_pairs(argv)
    given.pop("preset", None)
    if "env" in given and given["env"] != saved.env:
        raise CheckpointError(
            f"{cfg.run_dir} was trained on {saved.env!r}, not {given['env']!r}: drop env= or choose another run_dir."
        )
    changed = {key: value for key, value in given.items()
               if key not in RESUMABLE and saved.replace(**{key: value}) != saved}
    if changed:
        detail = ", ".join(f"{key}={value} (the run has {getattr(saved, key)!r})" for key, value in changed.items())
        raise ConfigError(f"{cfg.run_dir} cannot resume with {detail}: a resumed run keeps the config it was "
                          f"trained with, except {', '.join(RESUMABLE[:-2])}. Drop these keys, or start a new "
                          "run_dir.")
    return saved.replace(**given)


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


# --- the parts -----------------------------------------------------------------------------
def build_replay(cfg: Config, spec: ActionSpec, state_dim: int, device: torch.device,
                 scratch: Path | None = None) -> SequenceReplay:
    """The run's sequence replay, in GPU memory, RAM or memory-mapped under `scratch` as
    `cfg.replay_device` / `cfg.buffer_on_disk` say."""
    frame = (3, cfg.image_size, cfg.image_size)
    storage = replay_device(cfg.replay_device, device, cfg.buffer_size * SequenceReplay.row_bytes(
        frame, spec.dim, state_dim), on_disk=cfg.buffer_on_disk)
    return SequenceReplay(cfg.buffer_size, cfg.sample_len, frame, spec.dim, num_envs=cfg.num_envs,
                          state_dim=state_dim, scratch_dir=scratch if cfg.buffer_on_disk else None, device=storage)


def build_model(cfg: Config, spec: ActionSpec, device: torch.device,
                pretrained: PretrainedEncoder | None = None) -> WorldModel:
    """A world model for `spec`'s actions (continuous or discrete) on `device`, starting from the
    `pretrained` encoder when given."""
    model = WorldModel(cfg, spec).to(device)
    if pretrained is not None:
        transfer_into(model, pretrained)
    if cfg.encoder_from and cfg.encoder_frozen_layers:  # partial fine-tuning: set before the optimiser is built
        model.freeze_encoder_layers(cfg.encoder_frozen_layers)
    return model


def build_trainer(cfg: Config, model: WorldModel, device: torch.device) -> WorldModelTrainer:
    """The model's optimiser and precision; a frozen or fine-tuned encoder (`encoder_from`) gets its
    own learning rate, so a checkpoint's optimiser state loads into the same groups it was saved from."""
    return WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip, encoder_lr=encoder_lr(cfg))


def build_agent(cfg: Config, model: WorldModel, trainer: WorldModelTrainer | None, device: torch.device,
                seed: int) -> PlanningAgent:
    """The planning agent that acts with `model` and updates it through `trainer` (None: an agent
    that only acts, e.g. to time the planner)."""
    return PlanningAgent(cfg, model, trainer, device, seed=seed)


# --- loading a run back --------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A run folder's checkpoint, loaded into its parts and ready to act or be measured."""

    cfg: Config
    """The run's config (with any device override)."""
    checkpoint: Path
    """The checkpoint folder it was loaded from."""
    kind: str
    """`online_state` (train.py: the whole agent) or `pretrain_state` (pretrain.py: the trainer)."""
    agent: PlanningAgent
    """The planning agent over the loaded model (a pretrained model plans with its heads as trained)."""
    spec: ActionSpec
    run: RunDir

    @property
    def model(self) -> WorldModel:
        return self.agent.model


PLAN_KEYS = ("planner", "horizon", "samples", "iterations", "elites", "mppi_temperature", "act_from",
             "policy_samples", "min_std", "max_std")
"""Config keys of the search alone: a loaded agent may plan with other values of these (more samples,
a longer horizon) without touching what was learned."""


def load_run(run: RunDir | str | Path, checkpoint: str = "latest", seed: int = 12345, device: str = "",
             plan: dict[str, Any] | None = None) -> LoadedRun:
    """The checkpoint `checkpoint` (`latest` or a folder name under checkpoints/) of a run folder of
    train.py, transfer.py or pretrain.py, loaded into a fresh model, trainer and agent.

    `device` overrides the run's device when given; `seed` seeds the agent (an online checkpoint's
    planner random state then replaces what it restores); `plan` overrides keys of `PLAN_KEYS` (the
    search; anything else is a ConfigError).
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    cfg = run.config()
    if plan:
        other = sorted(set(plan) - set(PLAN_KEYS))
        if other:
            raise ConfigError(f"{', '.join(other)}: only the planner's keys ({', '.join(PLAN_KEYS)}) can change "
                              "for a trained agent.")
        cfg = cfg.replace(**plan)
    if "," in cfg.env:
        raise CheckpointError(f"{run.path} was pretrained on several environments ({cfg.env}): it has no one "
                              f"environment to act in. Transfer its encoder instead: encoder_from={run.path}.")
    if device:
        cfg = cfg.replace(device=device)
    folder, kind, state = run.load(checkpoint)
    spec, _ = env_facts(cfg)
    torch_device = checked_device(cfg)
    model = build_model(cfg, spec, torch_device)
    trainer = build_trainer(cfg, model, torch_device)
    agent = build_agent(cfg, model, trainer, torch_device, seed=seed)
    if kind == ONLINE:
        agent.load_state_dict(state["agent"])
    elif kind == PRETRAIN:
        trainer.load_state_dict(state["trainer"])
    return LoadedRun(cfg, folder, kind, agent, spec, run)


__all__ = [
    "PLAN_KEYS",
    "LoadedRun",
    "build_agent",
    "build_model",
    "build_replay",
    "build_trainer",
    "checked_device",
    "load_run",
    "resolve_config",
]
