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
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.data import (
    LazyMemmapStorage,
    LazyTensorStorage,
    ReplayBuffer,
    SliceSampler,
)

FORMAT_VERSION = 1

# torchrl logs an INFO line each time a storage is allocated; keep scripts' output readable.
logging.getLogger("torchrl").setLevel(logging.WARNING)


class ReplayError(ValueError):
    """Replay misuse: wrong shapes, sampling before enough data, a bad saved buffer."""


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
        c, h, w = obs_shape
        return c * h * w + 4 * action_dim + 4 + 3 + 16 + 4 * state_dim

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
        """Write content and counters to folder `path` (replaced if it exists)."""
        path = Path(path)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        # Storage (memory-mapped tensors + JSON) and write cursor only: the buffer's own dumps()
        # also pickles its prefetch state, and loading a pickle can run code.
        self._buffer.storage.dumps(path / "storage")  # memory-mapped on disk wherever the storage lives
        self._buffer.writer.dumps(path / "writer")
        meta = {
            "format_version": FORMAT_VERSION,
            "capacity": self.capacity,
            "seq_len": self.seq_len,
            "obs_shape": list(self.obs_shape),
            "action_dim": self.action_dim,
            "num_envs": self.num_envs,
            "state_dim": self.state_dim,
            "episode": self._episode.tolist(),
            "step": self._step.tolist(),
            "next_episode": self._next_episode,
            "longest": self._longest,
        }
        (path / "meta.json").write_text(json.dumps(meta))

    def load(self, path: str | Path) -> None:
        """Restore what `save` wrote; the layout (shapes, capacity, envs) must match this buffer."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as e:
            raise ReplayError(f"{path} is not a saved replay ({e}).") from None
        mine = {
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "action_dim": self.action_dim,
            "num_envs": self.num_envs,
            "state_dim": self.state_dim,
        }
        diff = {k: (meta.get(k), v) for k, v in mine.items() if meta.get(k) != v}
        if meta.get("format_version") != FORMAT_VERSION or diff:
            raise ReplayError(f"Saved replay at {path} does not match this buffer (saved, expected): {diff}.")
        self._buffer = self._make_buffer()
        self._buffer.storage.loads(path / "storage")
        self._buffer.writer.loads(path / "writer")
        self._episode = torch.tensor(meta["episode"], dtype=torch.long)
        self._step = torch.tensor(meta["step"], dtype=torch.long)
        self._next_episode = meta["next_episode"]
        self._longest = meta["longest"]

    @classmethod
    def from_saved(cls, path: str | Path, seq_len: int) -> SequenceReplay:
        """A replay rebuilt from what `save` wrote, sampling sequences of `seq_len` (may differ from the saved one)."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as e:
            raise ReplayError(f"{path} is not a saved replay ({e}): pass a checkpoint's replay/ folder.") from None
        replay = cls(meta["capacity"], seq_len, tuple(meta["obs_shape"]), meta["action_dim"],
                     num_envs=meta["num_envs"], state_dim=meta["state_dim"])
        replay.load(path)
        return replay

    def end_episodes(self) -> None:
        """Forget the episodes in progress: the next row of every env starts a new episode.

        Used on resume, when environments restart and unfinished episodes cannot continue.
        """
        self._episode.fill_(-1)
