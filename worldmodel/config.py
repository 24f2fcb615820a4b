"""One typed, frozen configuration for every script, with named presets and key=value overrides.

    cfg = Config.from_preset("debug", env="CartPole-v1", seed=3)
    cfg = parse_cli(["preset=debug", "env=CartPole-v1", "seed=3"])   # what scripts do

The class defaults are the `cpu` preset. A preset only lists what differs from them. The
docstring under each field is its documentation: `python scripts/train.py help` prints them all.
The config is frozen so `torch.compile` sees constants and no code writes into it.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import json
import re
import sys
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Literal


class ConfigError(ValueError):
    """A key or value given to the config is not valid; the message names it and the fix."""


@dataclass(frozen=True)
class Config:
    # --- run ------------------------------------------------------------------------------
    preset: Literal["debug", "cpu", "gpu"] = "cpu"
    """Preset the defaults come from: debug (tiny, for tests), cpu (2-core laptop), gpu (one GPU)."""
    env: str = "Pendulum-v1"
    """Gymnasium id that renders rgb_array, e.g. Pendulum-v1, CartPole-v1, dm_control/cartpole-swingup-v0."""
    exp: str = "default"
    """Experiment name, part of the default run folder name."""
    seed: int = 0
    """Seed for environments, networks and replay sampling."""
    run_dir: str = ""
    """Run folder; empty means runs/{env}__{exp}__{seed}__{time}."""
    resume: bool = False
    """Continue the run in run_dir from its latest checkpoint."""
    device: str = "auto"
    """auto (cuda when available, else cpu), cpu, cuda or cuda:N."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast precision for networks; fp16 (CUDA only) adds a gradient scaler."""

    # --- environment ----------------------------------------------------------------------
    image_size: int = 64
    """Side of the square frames fed to the model."""
    frame_stack: int = 1
    """Frames per observation from the env; the replay stores each frame once regardless."""
    action_repeat: int = 2
    """Simulator steps per agent step (rewards summed)."""
    num_envs: int = 1
    """Environments collecting in parallel (asynchronous workers when > 1)."""

    # --- training loop --------------------------------------------------------------------
    steps: int = 20_000
    """Environment steps to train for, counting action repeats and all parallel envs."""
    seed_steps: int = 1_000
    """Environment steps of uniformly random actions before learning starts."""
    updates_per_step: float = 0.5
    """Gradient updates per agent step (fractions accumulate)."""
    eval_every: int = 2_000
    """Environment steps between evaluations."""
    eval_episodes: int = 3
    """Episodes per evaluation, on a separate environment."""
    checkpoint_every: int = 5_000
    """Environment steps between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = 2
    """Most recent checkpoints kept on disk."""
    log_every: int = 500
    """Environment steps between training-metric log lines."""
    tensorboard: bool = True
    """Also write TensorBoard events under run_dir/tb."""

    # --- replay ---------------------------------------------------------------------------
    buffer_size: int = 100_000
    """Replay capacity in transitions (one 3xHxW uint8 frame each: ~12.3 kB at 64x64)."""
    buffer_on_disk: bool = False
    """Memory-map the replay under run_dir/replay instead of holding it in RAM."""
    batch_size: int = 16
    """Sequences per update batch."""
    seq_len: int = 16
    """Steps per sampled sequence."""

    @classmethod
    def from_preset(cls, preset: str = "cpu", **overrides: Any) -> "Config":
        """The preset's config with `overrides` applied; unknown keys or bad values raise ConfigError."""
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.")
        values = {**PRESETS[preset], **overrides, "preset": preset}
        _check_keys(values)
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    def replace(self, **changes: Any) -> "Config":
        """A copy with `changes` applied (validated like overrides)."""
        _check_keys(changes)
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path) -> "Config":
        """Read a saved config.json; keys this version does not know are an error."""
        with open(path) as f:
            values = json.load(f)
        _check_keys(values)
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    def __post_init__(self) -> None:
        _validate(self)


PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(
        steps=400,
        seed_steps=100,
        eval_every=200,
        eval_episodes=1,
        checkpoint_every=200,
        log_every=100,
        buffer_size=5_000,
        batch_size=4,
        seq_len=8,
        updates_per_step=0.25,
    ),
    "cpu": dict(),
    "gpu": dict(
        device="cuda",
        precision="bf16",
        steps=500_000,
        seed_steps=5_000,
        eval_every=10_000,
        eval_episodes=10,
        checkpoint_every=50_000,
        log_every=2_000,
        buffer_size=1_000_000,
        buffer_on_disk=True,
        batch_size=64,
        seq_len=32,
        updates_per_step=1.0,
    ),
}


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


def field_docs() -> dict[str, str]:
    """Field name -> the docstring written under it in `Config`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(Config)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)
    return docs


def _check_keys(values: dict[str, Any]) -> None:
    known = fields()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(f"Unknown config key {key!r}.{hint} Valid keys: {', '.join(known)}.")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(key: str, value: Any) -> Any:
    """Turn a command-line string (or a JSON value) into the field's type."""
    hint = typing.get_type_hints(Config)[key]
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not valid: choose one of {', '.join(map(str, choices))}.")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigError(f"{key}={value!r} is not a boolean: use true or false.")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be a number.")
        try:
            number = float(str(value).replace("_", "")) if isinstance(value, str) else float(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not a number.") from None
        if hint is int:
            if number != int(number):
                raise ConfigError(f"{key}={value!r} must be a whole number.")
            return int(number)
        return number
    return str(value)


_POSITIVE = ("image_size", "frame_stack", "action_repeat", "num_envs", "steps", "eval_every", "eval_episodes",
             "checkpoint_every", "keep_checkpoints", "log_every", "buffer_size", "batch_size", "seq_len")


def _validate(cfg: Config) -> None:
    for key in _POSITIVE:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}={getattr(cfg, key)} must be at least 1.")
    if cfg.seed_steps < 0 or cfg.updates_per_step < 0:
        raise ConfigError("seed_steps and updates_per_step must be non-negative.")
    if cfg.seq_len < 2:
        raise ConfigError(f"seq_len={cfg.seq_len} must be at least 2: the model learns from transitions.")
    if cfg.buffer_size < cfg.seq_len * cfg.num_envs:
        raise ConfigError(f"buffer_size={cfg.buffer_size} cannot hold one sequence per env (seq_len={cfg.seq_len}).")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device):
        raise ConfigError(f"device={cfg.device!r} is not valid: use auto, cpu, cuda or cuda:N.")
    if cfg.precision == "fp16" and cfg.device == "cpu":
        raise ConfigError("precision=fp16 needs CUDA; on CPU use precision=bf16 (fast on AMX) or fp32.")
    if cfg.resume and not cfg.run_dir:
        raise ConfigError("resume=true needs run_dir=<the run folder to continue>.")


def help_text(prog: str) -> str:
    docs = field_docs()
    lines = [f"usage: {prog} [key=value ...]   (e.g. preset=debug env=CartPole-v1 seed=3)", ""]
    lines.append("presets: " + ", ".join(PRESETS))
    for name, f in fields().items():
        lines.append(f"  {name}={f.default!s:<14} {docs.get(name, '')}")
    return "\n".join(lines)


def split_pairs(argv: list[str]) -> dict[str, str]:
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}` (values still strings)."""
    values: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"Argument {arg!r} is not key=value (e.g. env=CartPole-v1).")
        values[key.lstrip("-").replace("-", "_")] = value
    return values


def parse_overrides(argv: list[str]) -> Config:
    """Config from `key=value` strings; `preset=` is applied first, the rest on top of it."""
    values = split_pairs(argv)
    preset = values.pop("preset", "cpu")
    return Config.from_preset(preset, **values)


def parse_cli(argv: list[str] | None = None, prog: str | None = None) -> Config:
    """What scripts call: parse `sys.argv[1:]`; print help or a clear error and exit 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    prog = prog or sys.argv[0]
    if any(a in ("help", "-h", "--help") for a in argv):
        print(help_text(prog))
        raise SystemExit(0)
    try:
        return parse_overrides(argv)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
