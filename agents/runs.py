"""Run folders and their logs.

    runs/{env}__{exp}__{seed}__{time}/
        config.json          the resolved config
        metrics.jsonl        one JSON object per line, always with "step" (environment steps)
        tb/                  TensorBoard events
        checkpoints/
            latest           name of the newest complete checkpoint folder
            step_000005000/  state.pt (+ replay/), written under a .tmp name, then renamed
        videos/              imagined-rollout and evaluation videos
        plots/               learning curves, drawn at the end of a run
        eval_<checkpoint>.json   what scripts/evaluate.py measured
        replay/              the live replay with buffer_on_disk=true (pretrain.py: the data it collected)

A run killed at any moment leaves `latest` pointing at a complete checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config, parse_cli, split_pairs


def default_run_dir(cfg: Config, root: str | Path = "runs") -> Path:
    env = cfg.env.replace("/", "-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{env}__{cfg.exp}__{cfg.seed}__{stamp}"


class RunDir:
    """One run's folder. `RunDir.create` starts a run; `RunDir.open` continues one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.videos = self.path / "videos"
        self.tb = self.path / "tb"
        self.metrics = self.path / "metrics.jsonl"
        self.config_file = self.path / "config.json"

    @classmethod
    def create(cls, cfg: Config) -> RunDir:
        run = cls(cfg.run_dir or default_run_dir(cfg))
        if run.latest_checkpoint() is not None:
            raise CheckpointError(
                f"{run.path} already holds a run: pass resume=true to continue it, or another run_dir."
            )
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        run.videos.mkdir(exist_ok=True)
        cfg.replace(run_dir=str(run.path)).save(run.config_file)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(path)
        if not run.config_file.is_file():
            raise CheckpointError(f"{run.path} is not a run folder (no config.json): check run_dir.")
        return run

    def config(self) -> Config:
        return Config.load(self.config_file)

    # --- checkpoints ---------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        """Folder of the newest complete checkpoint, or None."""
        pointer = self.checkpoints / "latest"
        if not pointer.is_file():
            return None
        folder = self.checkpoints / pointer.read_text().strip()
        return folder if (folder / "state.pt").is_file() else None

    def checkpoint_tmp(self, step: int) -> Path:
        """The folder a checkpoint is written into before it is renamed into place."""
        return self.checkpoints / f"step_{step:09d}.tmp"

    def clear_tmp(self, step: int) -> Path:
        """An empty `checkpoint_tmp(step)` (what a killed run left there goes)."""
        tmp = self.checkpoint_tmp(step)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def save_checkpoint(
        self, step: int, state: dict[str, Any], extra: Callable[[Path], None] | None = None, keep: int = 2,
        clear: bool = True,
    ) -> Path:
        """Write `state` (and whatever `extra(folder)` writes, e.g. the replay) as one checkpoint.

        The folder is complete before `latest` points at it; older checkpoints beyond `keep` go.
        `clear=False` keeps what other processes already wrote into `checkpoint_tmp(step)`.
        """
        name = f"step_{step:09d}"
        tmp = self.clear_tmp(step) if clear else self.checkpoint_tmp(step)
        save_checkpoint(state, tmp / "state.pt", kind="train_state")
        if extra is not None:
            extra(tmp)
        final = self.checkpoints / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer_tmp = self.checkpoints / "latest.tmp"
        pointer_tmp.write_text(name)
        os.replace(pointer_tmp, self.checkpoints / "latest")
        for old in sorted(self.checkpoints.glob("step_*"))[:-keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load_latest(self) -> tuple[Path, dict[str, Any]]:
        return self.load("latest")

    def load(self, name: str = "latest") -> tuple[Path, dict[str, Any]]:
        """The checkpoint folder `name` (or the latest) and its state; refuses one of another env."""
        if name == "latest":
            folder = self.latest_checkpoint()
            if folder is None:
                raise CheckpointError(f"{self.path} has no checkpoint yet: train it first (scripts/train.py).")
        else:
            folder = self.checkpoints / name
        state = load_checkpoint(folder / "state.pt", kind="train_state")
        env = self.config().env
        if state["env"] != env:
            raise CheckpointError(f"checkpoint {folder} is of {state['env']!r}, the run folder says {env!r}.")
        return folder, state


def config_from_cli(argv: list[str]) -> Config:
    """The config a script runs with: from the command line or, for `resume=true`, the run's saved
    config with the command line's explicit keys on top (e.g. a larger `steps=` to extend a run).
    Resuming with another environment is refused. With `encoder_from=`, the encoder's shape keys
    come from the pretrained encoder (a clashing explicit key is an error)."""
    cfg = parse_cli(argv)
    if not cfg.resume:
        if cfg.encoder_from:
            from agents.transfer import (  # transfer imports this module
                adopt_encoder_config,
                load_pretrained_encoder,
            )

            cfg = adopt_encoder_config(cfg, load_pretrained_encoder(cfg.encoder_from), set(split_pairs(argv)))
        return cfg
    saved = RunDir.open(cfg.run_dir).config()
    given = split_pairs(argv)
    if "env" in given and given["env"] != saved.env:
        raise CheckpointError(
            f"{cfg.run_dir} was trained on {saved.env!r}, not {given['env']!r}: drop env= or choose another run_dir."
        )
    given.pop("preset", None)
    return saved.replace(**given)


class MetricsLogger:
    """Append metrics to `metrics.jsonl` (and TensorBoard). Each record has `step` and `time` (s).

    On resume from step S, records after S (written before the run was killed) are dropped so the
    file continues without duplicated steps.
    """

    def __init__(self, run: RunDir, tensorboard: bool = True, resume_step: int | None = None):
        self.path = run.metrics
        self._start = time.time()
        self._offset = 0.0
        if resume_step is not None and self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                if record.get("step", math.inf) <= resume_step:
                    kept.append(line)
                    self._offset = max(self._offset, float(record.get("time", 0.0)))
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(k + "\n" for k in kept))
            os.replace(tmp, self.path)
        self._file = open(self.path, "a")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(run.tb), purge_step=purge)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), "time": round(self._offset + time.time() - self._start, 3)}
        record.update({k: float(v) for k, v in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, float(v), int(step))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (dicts with a "step"); a line cut short by a killed run is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records
