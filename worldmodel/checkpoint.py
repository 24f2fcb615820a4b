"""Checkpoint files: versioned, written atomically, loaded with `weights_only=True`.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), so loading one
can never run code. Every file carries `format_version` and `kind`; a file of another kind,
version or environment is refused with a message saying what differs.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, unsafe, or of another kind or environment."""


def save_checkpoint(obj: dict[str, Any], path: str | Path, kind: str) -> Path:
    """Write `obj` to `path` atomically (temporary file, then rename): a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format_version": FORMAT_VERSION, "kind": kind, **obj}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, kind: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; check its version and (if given) its kind."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at {path}: check the path (a run folder keeps them in checkpoints/).")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted or truncated, or not written by "
                              "torch.save?).")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"Refusing to load {path}: it contains pickled Python objects, which could run code "
            f"({str(e).splitlines()[0][:200]}). Only checkpoints written by this package can be loaded."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted or truncated?): {e}") from None
    if not isinstance(obj, dict) or "format_version" not in obj:
        raise CheckpointError(f"{path} is not a checkpoint of this package (no format_version).")
    if obj["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {obj['format_version']}, this version reads {FORMAT_VERSION}."
        )
    if kind is not None and obj.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {obj.get('kind')!r} checkpoint, expected {kind!r}.")
    return obj
