"""Sequence replay: contiguous sub-sequences of episodes, frames stored once.

Built on torchrl's `ReplayBuffer` with a `LazyTensorStorage` (RAM) or `LazyMemmapStorage` (disk)
and a `SliceSampler` in *fragmented* mode: each row carries its episode id and step index, and the
sampler rebuilds episodes from them. Rows from several environments may therefore interleave in
storage, and an episode cut by the circular write head is split, never glued to its neighbour:
a sampled sequence is always `T` consecutive steps of one episode.

A row is one time step, in the "what led here" convention (as DreamerV3):

    obs        (3, H, W) uint8   the newest frame only; frame stacks are never stored
    action     (A,) float32      the action that led to this frame (zeros on the first step)
    reward     ()  float32       the reward received on arriving here (0 on the first step)
    terminated ()  bool          this frame is terminal: no value beyond it
    truncated  ()  bool          the episode was cut here (time limit): values continue
    is_first   ()  bool          first frame of an episode
    state      (S,) float32      the env's low-dimensional state, for probes (optional)
    episode, step ()  int64      bookkeeping for the sampler

So for a sampled sequence, `action[:, t+1]` is what the agent did at `obs[:, t]`, and
`reward[:, t+1]` is what it got for it.

Saved (`save`), a replay is a folder:

    meta.json            shapes, capacity, counters and the write cursor
    storage/meta.json    tensordict's JSON index of the columns (name, dtype, shape)
    storage/<name>.memmap    the filled rows of each column, raw

and `load` reads it back without unpickling anything: every entry of the index must be one of the
columns above, with the dtype, shape and file size this replay expects, or the folder is refused
with one `ReplayError` (a tampered folder cannot run code, a truncated one cannot load as zeros).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import MemoryMappedTensor, TensorDict
from torchrl.data import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ReplayBuffer,
    SliceSampler,
)

from worldmodel.checkpoint import space_shortfall

FORMAT_VERSION = 2
"""2: only the filled rows are saved, the write cursor in meta.json. 1 (still read): the whole
capacity, with torchrl's storage_metadata.json and writer/metadata.json."""

# torchrl logs an INFO line each time a storage is allocated; keep scripts' output readable.
logging.getLogger("torchrl").setLevel(logging.WARNING)


class ReplayError(ValueError):
    """Replay misuse: wrong shapes, sampling before enough data, a bad saved buffer."""


def _columns(obs_shape: tuple[int, ...], action_dim: int,
             state_dim: int) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """What a row stores: column name -> (dtype, shape of one row)."""
    columns = {
        "obs": (torch.uint8, tuple(obs_shape)),
        "action": (torch.float32, (action_dim,)),
        "reward": (torch.float32, ()),
        "terminated": (torch.bool, ()),
        "truncated": (torch.bool, ()),
        "is_first": (torch.bool, ()),
        "episode": (torch.int64, ()),
        "step": (torch.int64, ()),
    }
    if state_dim:
        columns["state"] = (torch.float32, (state_dim,))
    return columns


def _read_json(root: Path, name: str) -> Any:
    """File `name` of the saved replay in `root`; a missing, garbled or truncated one is a ReplayError
    naming it (the facts first, the folder last: callers may shorten the line)."""
    try:
        return json.loads((root / name).read_text())
    except FileNotFoundError:
        raise ReplayError(f"{root} is not a saved replay (no {name}).") from None
    except (OSError, ValueError) as e:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise ReplayError(f"the saved replay's {name} is garbled or truncated ({e}); replay: {root}") from None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_META = ("capacity", "seq_len", "action_dim", "num_envs", "state_dim", "next_episode", "longest")
"""Counts every meta.json holds (besides obs_shape, episode and step, checked on their own)."""
_META_V2 = ("rows", "cursor", "write_count")
"""Counts only format 2 holds."""

_CONFIG_KEY = {"capacity": "buffer_size", "obs_shape": "image_size", "action_dim": "env", "num_envs": "num_envs",
               "state_dim": "env"}
"""The config key behind each layout value of a saved replay, for messages."""


def _read_meta(path: Path) -> dict[str, Any]:
    """`path/meta.json`, checked for every key `load` uses (so a damaged one is one clear error)."""
    meta = _read_json(path, "meta.json")
    if not isinstance(meta, dict) or meta.get("format_version") not in (1, FORMAT_VERSION):
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise ReplayError(f"the saved replay's meta.json has format_version {version!r}, this version reads 1 "
                          f"and {FORMAT_VERSION}; replay: {path}")
    counts = _META + (_META_V2 if meta["format_version"] == FORMAT_VERSION else ())
    bad = [key for key in counts if not _is_count(meta.get(key))]
    shape = meta.get("obs_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_count(v) and v for v in shape)):
        bad.append("obs_shape")
    for key in ("episode", "step"):
        value = meta.get(key)
        if not (isinstance(value, list) and len(value) == meta.get("num_envs")
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            bad.append(key)
    if bad:
        raise ReplayError(f"the saved replay's meta.json is damaged (bad or missing {', '.join(bad)}); replay: {path}")
    return meta


def _as(value, dtype: torch.dtype, shape: tuple[int, ...], name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(value), dtype=dtype)
    if tensor.numel() != int(np.prod(shape)):
        raise ReplayError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}.")
    return tensor.reshape(shape)


class SequenceReplay:
    """Replay of `(B, T)` sequences from one or more parallel environments.

    Args:
        capacity: transitions held (oldest overwritten first).
        seq_len: T, steps per sampled sequence.
        obs_shape: `(3, H, W)` of one frame.
        action_dim: A, the size of action vectors (see `worldmodel.actions.ActionSpec`).
        num_envs: parallel environments feeding `add` (one row each per call).
        state_dim: S, size of `info["state"]` to keep for probes (0: none).
        scratch_dir: memory-map the storage in this folder instead of RAM.
        device: where the storage lives: "cpu", or a CUDA device to keep frames (still uint8) in GPU
            memory and sample there, with no host-to-device copy per batch.

    Example:
        >>> rb = SequenceReplay(10_000, seq_len=16, obs_shape=(3, 64, 64), action_dim=1)
        >>> rb.add(obs, action, reward, terminated, truncated, is_first)   # one row per env
        >>> batch = rb.sample(8)       # TensorDict, batch_size (8, 16); obs (8, 16, 3, 64, 64) uint8
    """

    def __init__(
        self,
        capacity: int,
        seq_len: int,
        obs_shape: tuple[int, int, int],
        action_dim: int,
        *,
        num_envs: int = 1,
        state_dim: int = 0,
        scratch_dir: str | Path | None = None,
        device: torch.device | str = "cpu",
    ):
        if seq_len < 1 or capacity < seq_len:
            raise ReplayError(f"capacity={capacity} must be at least seq_len={seq_len} >= 1.")
        self.capacity, self.seq_len = int(capacity), int(seq_len)
        self.obs_shape, self.action_dim = tuple(obs_shape), int(action_dim)
        self.num_envs, self.state_dim = int(num_envs), int(state_dim)
        self.scratch_dir = Path(scratch_dir) if scratch_dir else None
        self.device = torch.device(device)
        if self.scratch_dir is not None and self.device.type != "cpu":
            raise ReplayError("a memory-mapped replay (buffer_on_disk=true) lives on the CPU: drop one of the two.")
        self._buffer = self._make_buffer()
        self._episode = torch.full((self.num_envs,), -1, dtype=torch.long)  # current id per env
        self._step = torch.zeros(self.num_envs, dtype=torch.long)
        self._next_episode = 0
        self._longest = 0  # longest episode prefix written, to know when sampling can start

    def _make_buffer(self) -> ReplayBuffer:
        if self.scratch_dir is not None:
            storage = LazyMemmapStorage(self.capacity, scratch_dir=self.scratch_dir, existsok=True)
        else:
            storage = LazyTensorStorage(self.capacity, device=self.device)
        sampler = SliceSampler(
            slice_len=self.seq_len,
            traj_key="episode",
            step_key="step",
            fragmented=True,
            strict_length=True,
            truncated_key=None,
            init_key=None,
        )
        return ReplayBuffer(storage=storage, sampler=sampler)

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def bytes_per_transition(self) -> int:
        """Bytes one stored row takes: frame + action + reward + flags + ids + state."""
        return self.row_bytes(self.obs_shape, self.action_dim, self.state_dim)

    @staticmethod
    def row_bytes(obs_shape: tuple[int, int, int], action_dim: int, state_dim: int = 0) -> int:
        """Bytes of one row of a replay with these shapes (to size it before building it)."""
        columns = _columns(obs_shape, action_dim, state_dim).values()
        return sum(dtype.itemsize * int(np.prod(shape)) for dtype, shape in columns)

    def add(
        self,
        obs: np.ndarray | torch.Tensor,
        action: np.ndarray | torch.Tensor,
        reward: np.ndarray | torch.Tensor,
        terminated: np.ndarray | torch.Tensor,
        truncated: np.ndarray | torch.Tensor,
        is_first: np.ndarray | torch.Tensor,
        state: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        """Store one time step of every env.

        Args:
            obs: `(N, 3k, H, W)` uint8, k stacked frames; only the newest (last 3 channels) is kept.
            action: `(N, A)` float, the action that led to `obs` (ignored where `is_first`).
            reward, terminated, truncated, is_first: `(N,)`.
            state: `(N, S)` float, where `state_dim > 0`.
        """
        n = self.num_envs
        obs = torch.as_tensor(np.asarray(obs))
        c, h, w = self.obs_shape
        if obs.dtype != torch.uint8 or obs.ndim != 4 or obs.shape[0] != n or obs.shape[2:] != (h, w) or obs.shape[1] % c:
            raise ReplayError(f"obs must be ({n}, {c}*k, {h}, {w}) uint8, got {tuple(obs.shape)} {obs.dtype}.")
        is_first = _as(is_first, torch.bool, (n,), "is_first")
        action = _as(action, torch.float32, (n, self.action_dim), "action")
        reward = _as(reward, torch.float32, (n,), "reward")
        action = torch.where(is_first[:, None], torch.zeros_like(action), action)
        reward = torch.where(is_first, torch.zeros_like(reward), reward)

        new = is_first | (self._episode < 0)
        count = int(new.sum())
        if count:
            self._episode[new] = torch.arange(self._next_episode, self._next_episode + count)
            self._next_episode += count
        self._step = torch.where(new, torch.zeros_like(self._step), self._step + 1)
        self._longest = max(self._longest, int(self._step.max()) + 1)

        row = {
            "obs": obs[:, -c:].contiguous(),
            "action": action,
            "reward": reward,
            "terminated": _as(terminated, torch.bool, (n,), "terminated"),
            "truncated": _as(truncated, torch.bool, (n,), "truncated"),
            "is_first": new,
            "episode": self._episode.clone(),
            "step": self._step.clone(),
        }
        if self.state_dim:
            if state is None:
                raise ReplayError(f"this replay keeps a state of size {self.state_dim}: pass state=(N, S).")
            row["state"] = _as(state, torch.float32, (n, self.state_dim), "state")
        self._buffer.extend(TensorDict(row, batch_size=[n]))

    def can_sample(self) -> bool:
        """Whether some stored episode has at least `seq_len` steps."""
        return self._longest >= self.seq_len and len(self) >= self.seq_len

    def sample(self, batch_size: int, device: torch.device | str | None = None) -> TensorDict:
        """`batch_size` sequences: a TensorDict with batch size `(B, T)`, obs `(B, T, 3, H, W)` uint8.

        With `device` a CUDA device and the storage on the CPU, the batch goes through pinned
        memory so the copy can overlap with compute.
        """
        if not self.can_sample():
            raise ReplayError(
                f"No episode of {self.seq_len} steps stored yet ({len(self)} rows): collect more before sampling."
            )
        flat = self._buffer.sample(batch_size * self.seq_len)
        batch = flat.reshape(batch_size, self.seq_len)
        if device is None or torch.device(device) == batch.device:
            return batch
        if torch.device(device).type == "cuda" and batch.device.type == "cpu":
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=True)

    # --- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the filled rows and the counters to folder `path` (replaced if it exists).

        Only the `len(self)` filled rows are written, not the whole capacity. Too little free disk
        space is a ReplayError before anything is touched; a write that fails is one too, and
        leaves no half-written folder.
        """
        path = Path(path)
        rows = len(self)
        short = space_shortfall(path.parent, rows * self.bytes_per_transition)
        if short:
            raise ReplayError(f"Not enough free disk space to save the replay ({rows} transitions): {short} in "
                              f"{path.parent}.")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        writer = self._buffer.writer.state_dict()
        meta = {
            "format_version": FORMAT_VERSION,
            "capacity": self.capacity,
            "seq_len": self.seq_len,
            "obs_shape": list(self.obs_shape),
            "action_dim": self.action_dim,
            "num_envs": self.num_envs,
            "state_dim": self.state_dim,
            "rows": rows,
            "cursor": int(writer["_cursor"]),
            "write_count": int(writer["_write_count"]),
            "episode": self._episode.tolist(),
            "step": self._step.tolist(),
            "next_episode": self._next_episode,
            "longest": self._longest,
        }
        try:
            if rows:
                # Raw memory-mapped columns and tensordict's JSON index of them; never the buffer's own
                # dumps(), which also pickles its prefetch state.
                self._buffer.storage[:rows].to("cpu").memmap(path / "storage", copy_existing=True)
            (path / "meta.json").write_text(json.dumps(meta))  # last: a folder without it is no replay
        except (OSError, RuntimeError) as e:
            shutil.rmtree(path, ignore_errors=True)
            raise ReplayError(f"Could not save the replay to {path}: {str(e).splitlines()[0][:300]}") from None

    def load(self, path: str | Path) -> None:
        """Restore what `save` wrote; the layout (shapes, capacity, envs) must match this buffer.

        The storage is re-created at full capacity and the saved rows copied in, with the write
        cursor where it was: sampling continues exactly as before the save. Nothing is unpickled;
        a damaged or tampered folder is one ReplayError (see the module docstring).
        """
        path = Path(path)
        meta = _read_meta(path)
        mine = {
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "action_dim": self.action_dim,
            "num_envs": self.num_envs,
            "state_dim": self.state_dim,
        }
        diff = {k: (meta[k], v) for k, v in mine.items() if meta[k] != v}
        if diff:
            keys = sorted({_CONFIG_KEY[k] for k in diff})
            raise ReplayError(f"the saved replay does not match this buffer (saved, expected): {diff} (saved with "
                              f"another {'/'.join(keys)} than this config?); replay: {path}")
        on_disk, filled, cursor, write_count = self._extent(path, meta)
        buffer = self._make_buffer()
        if filled:
            data = TensorDict(self._read_columns(path, on_disk), batch_size=[on_disk])[:filled]
            # Oldest rows first, so that the storage's last write is the row before the cursor, as it
            # was when saved (the sampler cuts episodes there once the buffer is full).
            for part in (slice(cursor, filled), slice(0, cursor)):
                if part.stop > part.start:
                    buffer.storage.set(part, data[part])
        buffer.writer.load_state_dict({"_cursor": cursor, "_write_count": write_count})
        self._buffer = buffer
        self._episode = torch.tensor(meta["episode"], dtype=torch.long)
        self._step = torch.tensor(meta["step"], dtype=torch.long)
        self._next_episode = meta["next_episode"]
        self._longest = meta["longest"]

    def _extent(self, path: Path, meta: dict[str, Any]) -> tuple[int, int, int, int]:
        """(rows in the saved files, rows filled, write cursor, rows ever written), checked against
        each other; format 1 keeps the last three in torchrl's side files."""
        if meta["format_version"] == FORMAT_VERSION:
            on_disk = filled = meta["rows"]
            cursor, write_count = meta["cursor"], meta["write_count"]
        else:
            storage = _read_json(path, "storage/storage_metadata.json")
            writer = _read_json(path, "writer/metadata.json")
            storage, writer = (v if isinstance(v, dict) else {} for v in (storage, writer))
            on_disk, filled = self.capacity, storage.get("len")
            cursor, write_count = writer.get("cursor"), writer.get("write_count")
        full = filled == self.capacity
        if not (all(_is_count(v) for v in (filled, cursor, write_count)) and filled <= self.capacity
                and (cursor < filled if full else cursor == filled) and write_count >= filled
                and (full or write_count == filled)):
            raise ReplayError(f"the saved replay is damaged: its counters do not agree (rows {filled!r}, cursor "
                              f"{cursor!r}, written {write_count!r}, capacity {self.capacity}); replay: {path}")
        return on_disk, filled, cursor, write_count

    def _read_columns(self, path: Path, rows: int) -> dict[str, torch.Tensor]:
        """The memory-mapped columns of the saved replay in `path`, `rows` rows each, after checking
        tensordict's index (`storage/meta.json`) and the file sizes against the columns this replay stores."""
        index = _read_json(path, "storage/meta.json")
        if not isinstance(index, dict):
            raise ReplayError(f"the saved replay's storage/meta.json is damaged (not a JSON object); replay: {path}")
        expected = _columns(self.obs_shape, self.action_dim, self.state_dim)
        entries = {k: v for k, v in index.items() if k not in ("shape", "device", "_type")}
        for key, entry in entries.items():
            if key not in expected or not (isinstance(entry, dict) and {"shape", "dtype"} <= set(entry)
                                           <= {"shape", "dtype", "device", "is_nested"}
                                           and entry.get("is_nested", False) is False):
                raise ReplayError(f"Refusing to load the saved replay: storage/meta.json lists {key!r}, which is not "
                                  f"one of its plain tensor columns; unpickling it could run code. Replay: {path}")
        missing = [key for key in expected if key not in entries]
        if missing:
            raise ReplayError(f"the saved replay's storage/meta.json is damaged (no {', '.join(missing)}); "
                              f"replay: {path}")
        columns = {}
        for key, (dtype, shape) in expected.items():
            file, full_shape = path / "storage" / f"{key}.memmap", [rows, *shape]
            saved = (entries[key]["dtype"], entries[key]["shape"])
            if saved != (str(dtype), full_shape):
                raise ReplayError(f"the saved replay's storage/meta.json says {key} is {saved[1]} {saved[0]}, "
                                  f"expected {full_shape} {dtype}; replay: {path}")
            size, want = file.stat().st_size if file.is_file() else 0, rows * dtype.itemsize * int(np.prod(shape))
            if size != want:
                raise ReplayError(f"storage/{key}.memmap holds {size:,} bytes, its metadata says {full_shape} {dtype} "
                                  f"= {want:,} bytes: the saved replay is truncated or damaged. Replay: {path}")
            columns[key] = MemoryMappedTensor.from_filename(file, dtype, torch.Size(full_shape))
        return columns

    @classmethod
    def from_saved(cls, path: str | Path, seq_len: int) -> SequenceReplay:
        """A replay rebuilt from what `save` wrote, sampling sequences of `seq_len` (may differ from the saved one)."""
        path = Path(path)
        try:
            meta = _read_meta(path)
        except ReplayError as e:
            raise ReplayError(f"{e} (pass a checkpoint's replay/ folder)") from None
        replay = cls(meta["capacity"], seq_len, tuple(meta["obs_shape"]), meta["action_dim"],
                     num_envs=meta["num_envs"], state_dim=meta["state_dim"])
        replay.load(path)
        return replay

    def end_episodes(self) -> None:
        """Forget the episodes in progress: the next row of every env starts a new episode.

        Used on resume, when environments restart and unfinished episodes cannot continue.
        """
        self._episode.fill_(-1)


class MixedReplay:
    """Several environments' replays sampled as one: multi-environment pretraining's data.

    Each source is a `SequenceReplay` of one environment (its own action size and episode length);
    a batch of `B` sequences takes `B // k` from each of the `k` sources, the remainder going to the
    sources in turn, so every environment weighs the same whatever its episode lengths. Actions are
    zero-padded to the largest source's size (as multi-task TD-MPC2 does), so one dynamics model
    reads them all; the `state` column (a probe's, of another size per env) is left out of batches.

    Saved (`save`), it is a folder: `mixed.json` (the sources' names and facts, in order) and one
    saved `SequenceReplay` per source in `0/`, `1/`, ...

    Example:
        >>> mixed = MixedReplay([cartpole, walker], ["dm_control/cartpole-swingup-v0", "dm_control/walker-walk-v0"])
        >>> batch = mixed.sample(16)     # TensorDict (16, T): 8 of each; action (16, T, 6), cartpole's padded
    """

    def __init__(self, sources: list[SequenceReplay], names: list[str], facts: list[dict[str, Any]] | None = None):
        if not sources or len(sources) != len(names):
            raise ReplayError(f"a mixed replay needs one name per source replay, got {len(sources)} replays and "
                              f"{len(names)} names.")
        shapes = {tuple(s.obs_shape) for s in sources}
        if len(shapes) != 1 or len({s.seq_len for s in sources}) != 1:
            raise ReplayError(f"the source replays of a mixed replay must share one frame shape and sequence length, "
                              f"got frames {sorted(shapes)} and lengths {sorted({s.seq_len for s in sources})}.")
        self.sources, self.names = list(sources), list(names)
        self.facts = facts if facts is not None else [{} for _ in names]
        self.obs_shape, self.seq_len = sources[0].obs_shape, sources[0].seq_len
        self.action_dim = max(s.action_dim for s in sources)
        self._turn = 0  # which source gets the next batch's first extra sequence

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def can_sample(self) -> bool:
        return all(s.can_sample() for s in self.sources)

    def shares(self, batch_size: int) -> list[int]:
        """Sequences each source gives to the next batch of `batch_size` (the remainder rotates)."""
        k = len(self.sources)
        extra = [(i - self._turn) % k < batch_size % k for i in range(k)]
        return [batch_size // k + int(e) for e in extra]

    def sample(self, batch_size: int, device: torch.device | str | None = None) -> TensorDict:
        """`batch_size` sequences from all sources: TensorDict `(B, T)`, obs `(B, T, 3, H, W)` uint8,
        action `(B, T, A_max)` (zeros beyond a source's own size), grouped by source in order."""
        parts = []
        for source, share in zip(self.sources, self.shares(batch_size), strict=True):
            if share == 0:
                continue
            batch = source.sample(share, device)
            if "state" in batch.keys():
                del batch["state"]
            pad = self.action_dim - source.action_dim
            if pad:
                batch["action"] = torch.nn.functional.pad(batch["action"], (0, pad))
            parts.append(batch)
        self._turn = (self._turn + batch_size) % len(self.sources)
        return torch.cat(parts, 0)

    def save(self, path: str | Path) -> None:
        """Write `mixed.json` and each source under `path/<i>` (the folder is replaced)."""
        path = Path(path)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        for i, source in enumerate(self.sources):
            source.save(path / str(i))
        meta = {"format_version": 1, "kind": "mixed", "sources": [{"name": n, **f} for n, f in zip(self.names, self.facts, strict=True)]}
        (path / "mixed.json").write_text(json.dumps(meta))

    @staticmethod
    def is_saved(path: str | Path) -> bool:
        return (Path(path) / "mixed.json").is_file()

    @staticmethod
    def saved_sources(path: str | Path) -> list[dict[str, Any]]:
        """The sources listed in a saved mixed replay's `mixed.json` (name and facts of each, in
        order), without reading their data; a missing or damaged file is one ReplayError."""
        path = Path(path)
        meta = _read_json(path, "mixed.json")
        meta = meta if isinstance(meta, dict) else {}
        sources = meta.get("sources")
        if meta.get("format_version") != 1 or not isinstance(sources, list) or not sources or not all(
                isinstance(s, dict) and isinstance(s.get("name"), str) and _is_count(s.get("action_repeat", 0))
                for s in sources):
            raise ReplayError(f"the saved mixed replay's mixed.json is damaged (no list of named sources); replay: {path}")
        return sources

    @classmethod
    def from_saved(cls, path: str | Path, seq_len: int) -> MixedReplay:
        """The mixed replay `save` wrote to `path`; a damaged `mixed.json` or source is one ReplayError."""
        path = Path(path)
        sources = cls.saved_sources(path)
        replays = [SequenceReplay.from_saved(path / str(i), seq_len) for i in range(len(sources))]
        facts = [{k: v for k, v in s.items() if k != "name"} for s in sources]
        return cls(replays, [s["name"] for s in sources], facts)
