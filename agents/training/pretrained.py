"""Reusing a pretrained encoder in a new environment, and the encoders shipped with the package.

    pretrained = load_pretrained_encoder("runs/pendulum")     # a run folder, encoder.pt or world_model.pt
    pretrained = load_pretrained_encoder("pretrained:dmc")    # a shipped encoder, by name (shipped_encoders())
    cfg = adopt_encoder_config(cfg, pretrained, explicit={"image_size"})   # the encoder's shape wins
    model = WorldModel(cfg, ActionSpec.from_space(target_env.action_space))
    model.set_encoder(pretrained.state_dict, pretrained.config, pretrained.source)
    trainer = WorldModelTrainer(model, ..., encoder_lr=encoder_lr(cfg))

Only the encoder moves: the dynamics, reward, value and policy heads are built fresh for the target
environment's action space (continuous or discrete) and reward. `cfg.encoder_mode` says what
happens to the encoder next: `frozen` (never updated: bit-identical after training), `finetune`
(its own learning rate, `encoder_lr_scale * lr`) or `init` (trained like the rest).

Shipped encoders live in `worldmodel/weights/`: one `<name>.pt` (an `encoder.pt` of pretrain.py,
at most `MAX_SHIPPED_BYTES`) per entry of `index.json`, which records its source envs, objective,
image size, probe R², SHA-256 and the commands that regenerate it (`ship_encoder` writes both; a
file whose hash differs from its entry is refused as corrupted).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import worldmodel
from agents.analysis.metrics import read_metrics
from agents.training.runs import ONLINE, PRETRAIN, RunDir, state_kind
from worldmodel.checkpoint import CheckpointError, load_checkpoint
from worldmodel.config import Config, ConfigError
from worldmodel.model import ENCODER_KEYS, WorldModel, encoder_config_of

SHIPPED = "pretrained:"
"""Prefix of a shipped encoder's name in `encoder_from=` (e.g. `pretrained:dmc`)."""
WEIGHTS = Path(worldmodel.__file__).parent / "weights"
"""Where the shipped encoders and their `index.json` live."""
MAX_SHIPPED_BYTES = 2_000_000


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
    return PretrainedEncoder(weights, encoder_config_of(config), source, env)


def _from_file(path: Path) -> PretrainedEncoder:
    data = load_checkpoint(path)
    kind = data.get("kind")
    if kind == "encoder":
        return PretrainedEncoder(data["state_dict"], encoder_config_of(data["encoder_config"]), str(path))
    if kind == "world_model":
        return _from_model_state(data["state_dict"], data["config"], str(path), data["config"].get("env"))
    run_kind = state_kind(data)
    if run_kind is not None:  # a checkpoint of train.py (the agent) or pretrain.py (the trainer)
        trainer = data["agent"]["trainer"] if run_kind == ONLINE else data["trainer"]
        return _from_model_state(trainer["model"], data["config"], str(path), data.get("env"))
    raise CheckpointError(f"{path} holds a {kind!r} checkpoint, which has no encoder to transfer.")


def load_pretrained_encoder(source: str | Path) -> PretrainedEncoder:
    """The encoder of a run folder (its `encoder.pt`, else its latest checkpoint), an encoder file,
    a world-model file, a checkpoint's `state.pt`, or a shipped encoder (`pretrained:<name>`)."""
    if str(source).startswith(SHIPPED):
        name = str(source)[len(SHIPPED):]
        entry = shipped_entry(name)
        pretrained = _from_file(verified_shipped_file(name, entry))
        pretrained.source, pretrained.env = str(source), ",".join(entry["envs"])
        return pretrained
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


# --- shipped encoders ----------------------------------------------------------------------
def shipped_encoders(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The shipped encoders' index (name -> entry: file, sha256, bytes, envs, objective, image_size,
    probe_r2, commands, ...); empty when none is shipped."""
    folder = WEIGHTS if folder is None else folder
    index = folder / "index.json"
    if not index.is_file():
        return {}
    try:
        entries = json.loads(index.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"the shipped encoders' index {index} is damaged ({e}): restore it from the "
                              "repository (git checkout -- worldmodel/weights).") from None
    if not isinstance(entries, dict):
        raise CheckpointError(f"the shipped encoders' index {index} is damaged (not a JSON object).")
    return entries


def shipped_entry(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The index entry of shipped encoder `name`; an unknown name lists the ones that exist."""
    folder = WEIGHTS if folder is None else folder
    entries = shipped_encoders(folder)
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=1)
        hint = f" Did you mean {SHIPPED}{close[0]}?" if close else ""
        have = ", ".join(SHIPPED + n for n in entries) or "none"
        raise CheckpointError(f"No shipped encoder named {name!r}.{hint} Shipped: {have} "
                              "(python scripts/encoders.py lists them).")
    return entries[name]


def encoder_objective(source: str | Path) -> str:
    """The self-supervised objective the encoder `source` was pretrained with, read without loading it:
    a shipped encoder's index entry, a run folder's config.json; `–` when neither says (a bare file)."""
    if str(source).startswith(SHIPPED):
        return shipped_encoders().get(str(source)[len(SHIPPED):], {}).get("objective", "–")
    config = Path(source) / "config.json"
    if config.is_file():
        try:
            return json.loads(config.read_text()).get("objective", "–")
        except ValueError:
            return "–"
    return "–"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified_shipped_file(name: str, entry: dict[str, Any], folder: Path | None = None) -> Path:
    """The file of shipped encoder `name`, after checking it is there and its SHA-256 matches its entry."""
    folder = WEIGHTS if folder is None else folder
    path = folder / str(entry.get("file", ""))
    regenerate = " && ".join(entry.get("commands", [])) or "python scripts/encoders.py"
    if not path.is_file():
        raise CheckpointError(f"shipped encoder {name!r}: its file {path} is missing. Restore it (git checkout -- "
                              f"worldmodel/weights) or regenerate it: {regenerate}")
    if sha256(path) != entry.get("sha256"):
        raise CheckpointError(f"shipped encoder {name!r}: {path} does not match its recorded SHA-256 (corrupted or "
                              f"replaced). Restore it (git checkout -- worldmodel/weights) or regenerate it: {regenerate}")
    return path


def pretrain_command(cfg: Config) -> str:
    """The pretrain.py command line that rebuilds a run of config `cfg`: its preset, its env(s) and every
    key whose value differs from that preset's for that env (where it runs and what it logs left out)."""
    skip = {"preset", "env", "run_dir", "resume", "device", "replay_device", "tensorboard", "video", "compile"}
    base, mine = Config.from_preset(cfg.preset, env=cfg.env).to_dict(), cfg.to_dict()

    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    keys = [f"{k}={text(v)}" for k, v in mine.items() if k not in skip and v != base.get(k)]
    return " ".join(["python scripts/pretrain.py", f"preset={cfg.preset}", f"env={cfg.env}", *keys])


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def ship_encoder(run_dir: str | Path, name: str, folder: Path | None = None, note: str = "") -> dict[str, Any]:
    """Copy a finished pretrain.py run's `encoder.pt` into `folder` as shipped encoder `name` and
    record it in `index.json` (replacing an entry of that name). Returns the entry."""
    folder = WEIGHTS if folder is None else folder
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"name={name!r}: use letters, digits, '-', '_' or '.' (it becomes pretrained:<name>).")
    run = RunDir.open(run_dir)
    source = run.path / "encoder.pt"
    if not source.is_file():
        raise CheckpointError(f"{run.path} has no encoder.pt: ship a finished scripts/pretrain.py run.")
    size = source.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        raise CheckpointError(f"{source} is {size / 1e6:.2f} MB; shipped encoders are at most "
                              f"{MAX_SHIPPED_BYTES / 1e6:.0f} MB: pretrain a smaller encoder (latent_dim, enc_channels).")
    _, kind, state = run.load("latest")
    if kind != PRETRAIN:
        raise CheckpointError(f"{run.path} is not a scripts/pretrain.py run: ship the encoder of a pretraining run, "
                              "whose command can be recorded beside it.")
    cfg, data = run.config(), load_checkpoint(source, kind="encoder")
    probes = [r for r in read_metrics(run.metrics) if "probe/r2" in r] if run.metrics.is_file() else []
    last = probes[-1] if probes else {}
    entry = {
        "file": f"{name}.pt", "sha256": sha256(source), "bytes": size,
        "envs": cfg.env.split(","), "objective": cfg.objective, "image_size": cfg.image_size,
        "history": cfg.history, "latent_dim": cfg.latent_dim, "encoder": cfg.encoder, "enc_act": cfg.enc_act,
        "parameters": sum(v.numel() for v in data["state_dict"].values()),
        "pretrain_updates": int(state["trainer"]["steps"]),
        "collect_steps_per_env": cfg.collect_steps, "seed": cfg.seed,
        "probe_r2": {k: round(v, 4) for k, v in last.items() if k.startswith("probe/r2") and "_dim" not in k},
        "commands": [f"{pretrain_command(cfg)} run_dir=<run>",
                     f"python scripts/encoders.py ship=<run> name={name}"],
        "package_commit": _commit(), "created": time.strftime("%Y-%m-%d"), "note": note,
    }
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.pt.tmp"
    shutil.copyfile(source, tmp)
    os.replace(tmp, folder / entry["file"])
    entries = shipped_encoders(folder)
    entries[name] = entry
    index = folder / "index.json"
    (folder / ".index.json.tmp").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    os.replace(folder / ".index.json.tmp", index)
    return entry


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


__all__ = ["MAX_SHIPPED_BYTES", "SHIPPED", "WEIGHTS", "PretrainedEncoder", "adopt_encoder_config", "encoder_lr",
           "encoder_objective",
           "load_pretrained_encoder", "pretrain_command", "ship_encoder", "shipped_encoders", "transfer_into"]
