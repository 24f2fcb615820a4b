"""Reusing a pretrained encoder in a new environment.

    pretrained = load_pretrained_encoder("runs/pendulum")     # a run folder, encoder.pt or world_model.pt
    cfg = adopt_encoder_config(cfg, pretrained, explicit={"image_size"})   # the encoder's shape wins
    model = WorldModel(cfg, ActionSpec.from_space(target_env.action_space))
    model.set_encoder(pretrained.state_dict, pretrained.config, pretrained.source)
    trainer = WorldModelTrainer(model, ..., encoder_lr=encoder_lr(cfg))

Only the encoder moves: the dynamics, reward, value and policy heads are built fresh for the target
environment's action space (continuous or discrete) and reward. `cfg.encoder_mode` says what
happens to the encoder next: `frozen` (never updated: bit-identical after training), `finetune`
(its own learning rate, `encoder_lr_scale * lr`) or `init` (trained like the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.training.runs import ONLINE, RunDir, state_kind
from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.config import Config, ConfigError
from worldmodel.model import ENCODER_KEYS, WorldModel


@dataclass
class PretrainedEncoder:
    state_dict: dict[str, torch.Tensor]
    """The encoder's weights (as `WorldModel.encoder_weights` returns them)."""
    config: dict[str, Any]
    """The `ENCODER_KEYS` values it was built with (input size, history, widths)."""
    source: str
    """Where it came from, for messages."""
    env: str | None = None
    """The environment it was trained on, when known."""


def _from_model_state(model_state: dict[str, torch.Tensor], config: dict[str, Any], source: str,
                      env: str | None) -> PretrainedEncoder:
    weights = WorldModel.encoder_weights(model_state)
    if not weights:
        raise CheckpointError(f"{source} holds no encoder weights.")
    return PretrainedEncoder(weights, {key: config.get(key) for key in ENCODER_KEYS}, source, env)


def _from_file(path: Path) -> PretrainedEncoder:
    data = load_checkpoint(path)
    kind = data.get("kind")
    if kind == "encoder":
        return PretrainedEncoder(data["state_dict"], data["encoder_config"], str(path))
    if kind == "world_model":
        return _from_model_state(data["state_dict"], data["config"], str(path), data["config"].get("env"))
    run_kind = state_kind(data)
    if run_kind is not None:  # a checkpoint of train.py (the agent) or pretrain.py (the trainer)
        trainer = data["agent"]["trainer"] if run_kind == ONLINE else data["trainer"]
        return _from_model_state(trainer["model"], data["config"], str(path), data.get("env"))
    raise CheckpointError(f"{path} holds a {kind!r} checkpoint, which has no encoder to transfer.")


def load_pretrained_encoder(source: str | Path) -> PretrainedEncoder:
    """The encoder of a run folder (its `encoder.pt`, else its latest checkpoint), an encoder file,
    a world-model file or a checkpoint's `state.pt`."""
    path = Path(source)
    if path.is_dir():
        if (path / "state.pt").is_file():  # one checkpoint folder
            return _from_file(path / "state.pt")
        run = RunDir.open(path)  # refuses a folder that is not a run
        if (path / "encoder.pt").is_file():
            pretrained = _from_file(path / "encoder.pt")
        else:
            folder = run.latest_checkpoint()
            if folder is None:
                raise CheckpointError(f"{path} has no encoder.pt and no checkpoint yet: train or pretrain it first.")
            pretrained = _from_file(folder / "state.pt")
        pretrained.env = run.config().env
        return pretrained
    if path.is_file():
        return _from_file(path)
    raise CheckpointError(f"encoder_from={str(source)!r}: no such run folder or file. Pass a run folder "
                          "(train.py or pretrain.py), its encoder.pt, or a world_model.pt.")


def adopt_encoder_config(cfg: Config, pretrained: PretrainedEncoder, explicit: set[str] | frozenset[str] = frozenset()
                         ) -> Config:
    """`cfg` with the encoder's shape keys (`ENCODER_KEYS`) taken from the pretrained encoder.

    A key the user set explicitly (`explicit`) to another value cannot work with these weights and
    is refused, naming every such key.
    """
    clash = {key: (pretrained.config[key], getattr(cfg, key)) for key in ENCODER_KEYS
             if key in explicit and pretrained.config[key] != getattr(cfg, key)}
    if clash:
        detail = ", ".join(f"{key}={mine!r} (the encoder has {theirs!r})" for key, (theirs, mine) in clash.items())
        raise ConfigError(f"The encoder from {pretrained.source} cannot work with {detail}: its input size, "
                          "frame history and widths are fixed by its weights. Drop these keys (the encoder's "
                          "values are used) or pretrain an encoder with them.")
    return cfg.replace(**pretrained.config)


def encoder_lr(cfg: Config) -> float | None:
    """The encoder's learning rate for `cfg`: None (same as the rest) unless transferring."""
    if not cfg.encoder_from or cfg.encoder_mode == "init":
        return None
    return 0.0 if cfg.encoder_mode == "frozen" else cfg.encoder_lr_scale * cfg.lr


def transfer_into(model, pretrained: PretrainedEncoder) -> None:
    """Copy the pretrained weights into `model`'s encoders, turning a shape mismatch into one error."""
    try:
        model.set_encoder(pretrained.state_dict, pretrained.config, pretrained.source)
    except RuntimeError as e:
        raise CheckpointError(f"the encoder weights in {pretrained.source} do not load (corrupted or from "
                              f"another version?): {str(e).splitlines()[0][:300]}") from None


__all__ = ["PretrainedEncoder", "adopt_encoder_config", "encoder_lr", "load_pretrained_encoder", "transfer_into"]
