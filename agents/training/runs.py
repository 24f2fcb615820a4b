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

import fcntl
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config

LOCK_FILE = ".lock"
"""A run folder's lock: held (flock) by the one process writing the run."""
ONLINE = "online_state"
"""Checkpoint kind of an online run (train.py, transfer.py): the agent, explorer, counters, RNG states."""
PRETRAIN = "pretrain_state"
"""Checkpoint kind of offline pretraining (pretrain.py): the trainer and the torch RNG state."""


_OTHER_SCRIPT = {
    ONLINE: "is an online run (train.py): continue it with train.py resume=true.",
    PRETRAIN: "is a pretraining run (pretrain.py): continue it with pretrain.py resume=true, or start an online "
              "run from its encoder with encoder_from=.",
}


class WrongKind(CheckpointError):
    """A run folder continued by the script of the other kind (train.py on a pretraining run, ...)."""


def state_kind(data: dict[str, Any]) -> str | None:
    """`ONLINE` or `PRETRAIN` for a loaded run checkpoint, None for any other file. Files written
    before the two kinds existed (one `train_state` for both) are told apart by what they hold."""
    kind = data.get("kind")
    if kind == "train_state":
        return ONLINE if "agent" in data else PRETRAIN
    return kind if kind in (ONLINE, PRETRAIN) else None


def read_state(path: str | Path) -> tuple[str, dict[str, Any]]:
    """A run checkpoint's `state.pt`: its kind (`ONLINE` or `PRETRAIN`) and contents."""
    state = load_checkpoint(path)
    kind = state_kind(state)
    if kind is None:
        raise CheckpointError(f"{path} holds a {state.get('kind')!r} checkpoint, not a run's state "
                              f"({ONLINE} or {PRETRAIN}).")
    return kind, state


def writable(folder: str | Path) -> bool:
    """Whether files can be written into `folder` (made if missing): tried, not guessed from
    permission bits, since a read-only mount refuses even root."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            return True
    except OSError:
        return False


def default_run_dir(cfg: Config, root: str | Path = "runs") -> Path:
    ids = cfg.env.split(",")
    env = ids[0].replace("/", "-") if len(ids) == 1 else f"mixed-{len(ids)}envs"  # several: pretrain.py's mixed data
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
        self.created = False
        """Whether this process made the folder (only then may `discard` remove it)."""
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, cfg: Config) -> RunDir:
        """Start a run in `cfg.run_dir` (or a new default folder), holding its lock. A folder whose
        run never completed a checkpoint is started afresh (its metrics and events are dropped)."""
        run = cls(cfg.run_dir or default_run_dir(cfg))
        run.created = not run.path.exists()
        if run.path.exists() and not run.path.is_dir():
            raise CheckpointError(f"run_dir={str(run.path)!r} is a file, not a folder: pass another run_dir.")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot create the run folder {run.path} ({e.strerror or e}): pass a run_dir "
                                  "where you can write.") from None
        run.lock()
        if run.latest_checkpoint() is not None:
            run.unlock()
            raise CheckpointError(
                f"{run.path} already holds a run: pass resume=true to continue it, or another run_dir."
            )
        # What a run killed before its first checkpoint logged cannot be continued: start clean.
        run.metrics.unlink(missing_ok=True)
        shutil.rmtree(run.tb, ignore_errors=True)
        run.checkpoints.mkdir(exist_ok=True)
        run.videos.mkdir(exist_ok=True)
        run.write_config(cfg.replace(run_dir=str(run.path)))
        return run

    @classmethod
    def open(cls, path: str | Path, write: bool = False) -> RunDir:
        """An existing run folder; `write=True` (to continue training it) also takes its lock."""
        run = cls(path)
        if not run.config_file.is_file():
            raise CheckpointError(f"{run.path} is not a run folder (no config.json): check run_dir.")
        if write:
            run.lock()
        return run

    # --- one writer at a time --------------------------------------------------------------
    def lock(self) -> None:
        """Take the folder's lock (`.lock`, an advisory `flock` the OS drops when the process ends,
        so a killed run never leaves a stale lock); a folder another live process holds is refused
        with one line naming it. Also the check that the folder is writable, before any work."""
        path = self.path / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CheckpointError(f"the run folder {self.path} is not writable ({e.strerror or e}): continue it "
                                  "from a copy you can write to, or pass another run_dir.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CheckpointError(f"{self.path} is in use by {holder}: wait for it to finish (or stop it), or "
                                  "pass another run_dir.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})"
                  .encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock taken by `lock` (closing the file releases it; the file itself stays)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        """Remove a folder this process created for a run that failed before its first checkpoint,
        so a refused start leaves nothing half-written."""
        self.unlock()
        if self.created and self.latest_checkpoint() is None:
            shutil.rmtree(self.path, ignore_errors=True)

    def writable(self) -> bool:
        """Whether files can be written into the folder (see `writable`)."""
        return writable(self.path)

    def write_config(self, cfg: Config) -> None:
        """Write `config.json` atomically (what `config()` reads back)."""
        tmp = self.config_file.with_name("config.json.tmp")
        cfg.save(tmp)
        os.replace(tmp, self.config_file)

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
        self, step: int, state: dict[str, Any], kind: str, extra: Callable[[Path], None] | None = None,
        keep: int = 2, clear: bool = True,
    ) -> Path:
        """Write `state` (of `kind`, ONLINE or PRETRAIN), and whatever `extra(folder)` writes (e.g. the
        replay), as one checkpoint.

        The folder is complete before `latest` points at it; older checkpoints beyond `keep` go.
        `clear=False` keeps what other processes already wrote into `checkpoint_tmp(step)`.
        Too little free disk space (the last checkpoint's size is the estimate; `state` and the replay
        check their own too) or a failed write is one CheckpointError: the partial folder goes and
        `latest` still points at the last complete checkpoint.
        """
        name = f"step_{step:09d}"
        tmp = self.clear_tmp(step) if clear else self.checkpoint_tmp(step)
        latest = self.latest_checkpoint()
        try:
            needed = sum(f.stat().st_size for f in latest.rglob("*") if f.is_file()) if latest else 0
            free = shutil.disk_usage(self.checkpoints).free
            if free < needed:
                raise CheckpointError(f"Not enough free disk space in {self.checkpoints}: the last checkpoint "
                                      f"took {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB are free.")
            save_checkpoint(state, tmp / "state.pt", kind=kind)
            if extra is not None:
                extra(tmp)
        except (ValueError, OSError) as e:  # CheckpointError, ReplayError (both ValueErrors), or a refused write
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(f"Checkpoint {name} was not written: {e} The last complete one, "
                                  f"{latest.name if latest else 'none'}, is still the latest. Free some disk "
                                  "space (or keep fewer checkpoints: keep_checkpoints=) and resume.") from e
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

    def complete_checkpoints(self) -> list[Path]:
        """Every complete checkpoint folder, the one `latest` points at first, then the others newest first."""
        folders = sorted((f for f in self.checkpoints.glob("step_*") if f.suffix != ".tmp" and (f / "state.pt").is_file()),
                         reverse=True)
        latest = self.latest_checkpoint()
        return ([latest] if latest else []) + [f for f in folders if f != latest]

    def load_resumable(self, kind: str, then: Callable[[Path], None] | None = None) -> tuple[Path, dict[str, Any]]:
        """The newest checkpoint of `kind` (ONLINE or PRETRAIN) that reads whole: `latest`, or, when
        that one is damaged, the newest older one, with a warning line saying so. `then(folder)`
        (e.g. loading the replay saved with it) counts as part of reading it. A run of the other
        kind is refused at once, saying which script continues it."""
        folders = self.complete_checkpoints()
        if not folders:
            raise CheckpointError(f"{self.path} has no checkpoint yet: start it without resume=true.")
        failures = []
        for folder in folders:
            try:
                found, state = read_state(folder / "state.pt")
                if found != kind:
                    raise WrongKind(f"{self.path} {_OTHER_SCRIPT[found]}")
                if then is not None:
                    then(folder)
            except WrongKind:
                raise
            except (CheckpointError, ValueError) as e:  # ReplayError is a ValueError
                failures.append(f"{folder.name}: {str(e).splitlines()[0][:200]}")
                continue
            if failures:
                print(f"warning: resuming from {folder.name}; newer checkpoints cannot be read "
                      f"({'; '.join(failures)})", file=sys.stderr)
            return folder, state
        raise CheckpointError(f"no checkpoint of {self.path} can be read: {'; '.join(failures)}")

    def load(self, name: str = "latest") -> tuple[Path, str, dict[str, Any]]:
        """The checkpoint folder `name` (or the latest), its kind (ONLINE or PRETRAIN) and its state;
        refuses one of another env."""
        if name == "latest":
            folder = self.latest_checkpoint()
            if folder is None:
                raise CheckpointError(f"{self.path} has no checkpoint yet: train it first (scripts/train.py).")
        else:
            folder = self.checkpoints / name
        kind, state = read_state(folder / "state.pt")
        env = self.config().env
        if state["env"] != env:
            raise CheckpointError(f"checkpoint {folder} is of {state['env']!r}, the run folder says {env!r}.")
        return folder, kind, state


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


