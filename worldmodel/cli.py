"""The command line of every script: `key=value` arguments, help, and one-line errors.

    cfg = parse_cli(["preset=debug", "env=CartPole-v1", "seed=3"])      # scripts configured by `Config`
    args = parse_keys(argv, {"run_dir": (str, ..., "run folder")}, "evaluate.py")   # the other scripts

Both print help for `help` (exit 0) and, on an unknown key or a bad value, one line naming it and
the valid keys (exit 2). Values are typed by `worldmodel.config.coerce_to`, the one coercion the
config itself uses.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from worldmodel.config import (
    PRESET_TASKS,
    PRESETS,
    Config,
    ConfigError,
    coerce_to,
    field_docs,
    fields,
    unknown_key,
)


def help_text(prog: str) -> str:
    """Every config key with its default and the docstring written under it in `Config`."""
    docs = field_docs()
    lines = [f"usage: {prog} [key=value ...]   (e.g. preset=debug env=CartPole-v1 seed=3)", ""]
    lines.append("presets: " + ", ".join(PRESETS))
    for_task = [f"{preset} on {env}: " + " ".join(f"{k}={v}" for k, v in values.items())
                for preset, tasks in PRESET_TASKS.items() for env, values in tasks.items()]
    if for_task:
        lines.append("a preset's values for one task (the command line still wins): " + "; ".join(for_task))
    for name, f in fields().items():
        lines.append(f"  {name}={f.default!s:<14} {' '.join(docs.get(name, '').split())}")  # one line per key
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


def _wants_help(argv: list[str]) -> bool:
    return any(a in ("help", "-h", "--help") for a in argv)


def parse_keys(argv: list[str], allowed: dict[str, tuple[type, Any, str]], prog: str) -> dict[str, Any]:
    """`key=value` arguments of a script that is not configured by `Config` (evaluate, imagine, ...).

    `allowed` maps each key to (type, default, doc); a default of `...` makes the key required.
    Prints help for `help`; exits 2 naming the key and the valid ones on an unknown key or bad value.
    """
    if _wants_help(argv):
        print(f"usage: {prog} " + " ".join(f"{k}=..." for k in allowed))
        for key, (kind, default, doc) in allowed.items():
            shown = "(required)" if default is ... else f"(default {default!r})"
            print(f"  {key:<12} {doc} {shown}")
        raise SystemExit(0)
    try:
        given = split_pairs(argv)
        for key in given:
            if key not in allowed:
                raise unknown_key(key, list(allowed), what="key")
        out = {}
        for key, (kind, default, _) in allowed.items():
            if key in given:
                out[key] = coerce_to(kind, key, given[key])
            elif default is ...:
                raise ConfigError(f"{key}= is required (e.g. {key}=runs/<run folder>).")
            else:
                out[key] = default
        return out
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def parse_cli(argv: list[str] | None = None, prog: str | None = None) -> Config:
    """What scripts call: parse `sys.argv[1:]`; print help or a clear error and exit 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    prog = prog or Path(sys.argv[0]).name
    if _wants_help(argv):
        print(help_text(prog))
        raise SystemExit(0)
    try:
        return parse_overrides(argv)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = ["help_text", "parse_cli", "parse_keys", "parse_overrides", "split_pairs"]
