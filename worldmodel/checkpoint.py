"""Checkpoint files: versioned, written atomically, loaded with `weights_only=True`.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), so loading one
can never run code. Every file carries `format_version` and `kind`; a file of another kind,
version or environment is refused with a message saying what differs. Writing checks the free disk
space first and fails with one line, leaving any older file in place.
"""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1

SPACE_MARGIN = 1 << 20
"""Bytes kept free beyond a file's estimated size (file-system overhead, JSON side files, headers)."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, unsafe, or of another kind or environment."""


def free_bytes(path: str | Path) -> int:
    """Free disk space where `path` is, or would be created (its nearest existing parent folder)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def space_shortfall(path: str | Path, needed: int) -> str | None:
    """None when `needed` bytes (plus `SPACE_MARGIN`) fit where `path` goes; else what is missing, as a phrase."""
    free = free_bytes(path)
    if free >= needed + SPACE_MARGIN:
        return None
    return f"it needs about {(needed + SPACE_MARGIN) / 1e6:.1f} MB and {free / 1e6:.1f} MB are free"


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a nest of dicts, lists and tuples (most of what `torch.save` writes)."""
    if isinstance(obj, torch.Tensor):
        return obj.element_size() * obj.numel()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def save_checkpoint(obj: dict[str, Any], path: str | Path, kind: str) -> Path:
    """Write `obj` to `path` atomically (temporary file, then rename): a crash leaves the old file.

    Too little free disk space, or a failed write, is a `CheckpointError`; the old file stays.
    """
    path = Path(path)
    short = space_shortfall(path.parent, tensor_bytes(obj))
    if short:
        raise CheckpointError(f"Not enough free disk space to write {path}: {short}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save({"format_version": FORMAT_VERSION, "kind": kind, **obj}, tmp)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError from its zip writer
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"Could not write {path}: {str(e).splitlines()[0][:300]}") from None
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
