import json
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import NonTensorData, TensorDict

from worldmodel.replay import MixedReplay, ReplayError, SequenceReplay


def _fill(rb: SequenceReplay, steps: int, seed: int = 0, p_end: float = 0.08, stack: int = 1):
    """Feed `steps` rows per env. Each frame's pixels and `state` encode (episode, step) so
    sequences can be checked: state = 1000 * episode + step; reward = step; the flags follow
    distinct patterns of the code (terminated: code % 7 == 3, truncated: code % 5 == 1), so a
    swapped or misaligned column shows."""
    rng = np.random.default_rng(seed)
    n = rb.num_envs
    episode = np.arange(n)
    t = np.zeros(n, int)
    next_ep = n
    for _ in range(steps):
        code = 1000 * episode + t
        obs = np.zeros((n, 3 * stack, *rb.obs_shape[1:]), np.uint8)
        obs[:, -3:] = (code % 251)[:, None, None, None]
        obs[:, :-3] = 255  # older stacked frames: must not be stored
        rb.add(obs, rng.uniform(-1, 1, (n, rb.action_dim)), t.astype(np.float32),
               code % 7 == 3, code % 5 == 1, t == 0, np.repeat(code[:, None], rb.state_dim, 1).astype(np.float32))
        t += 1
        for i in range(n):
            if rng.random() < p_end:
                episode[i], t[i], next_ep = next_ep, 0, next_ep + 1


def _check_sequences(batch):
    code = batch["state"][..., 0]
    diffs = code[:, 1:] - code[:, :-1]
    assert torch.all(diffs == 1), "a sequence crossed an episode boundary or skipped a step"
    assert torch.all(batch["episode"] == batch["episode"][:, :1])
    assert torch.all(batch["obs"] == (code % 251).to(torch.uint8)[..., None, None, None])
    assert torch.equal(batch["reward"], code % 1000)
    assert torch.equal(batch["terminated"].bool(), code.long() % 7 == 3)
    assert torch.equal(batch["truncated"].bool(), code.long() % 5 == 1)
    assert torch.equal(batch["is_first"].bool(), code.long() % 1000 == 0)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_sequences_are_contiguous_and_stay_in_one_episode(num_envs):
    rb = SequenceReplay(2_000, seq_len=6, obs_shape=(3, 8, 8), action_dim=2, num_envs=num_envs, state_dim=1)
    _fill(rb, 400)
    batch = rb.sample(64)
    assert batch.batch_size == torch.Size([64, 6])
    assert batch["obs"].shape == (64, 6, 3, 8, 8) and batch["obs"].dtype == torch.uint8
    assert batch["action"].shape == (64, 6, 2)
    for key in ("reward", "terminated", "truncated", "is_first"):
        assert batch[key].shape == (64, 6)
    _check_sequences(batch)


def test_wraparound_never_glues_old_and_new_data():
    rb = SequenceReplay(250, seq_len=8, obs_shape=(3, 8, 8), action_dim=1, num_envs=2, state_dim=1)
    _fill(rb, 1_000, p_end=0.02)  # storage overwritten ~8 times, mid-episode
    assert len(rb) == 250
    for _ in range(20):
        _check_sequences(rb.sample(32))


def test_first_step_convention():
    rb = SequenceReplay(1_000, seq_len=4, obs_shape=(3, 8, 8), action_dim=2, state_dim=1)
    _fill(rb, 300, p_end=0.1)
    batch = rb.sample(256)
    first = batch["is_first"]
    assert first.any()
    assert torch.all(first == (batch["step"] == 0))
    # No action led to a first frame and no reward was received on arriving there.
    assert torch.all(batch["action"][first] == 0) and torch.all(batch["reward"][first] == 0)
    assert torch.all(batch["reward"][~first] == batch["step"][~first].float())


def test_only_the_newest_frame_of_a_stack_is_stored():
    rb = SequenceReplay(500, seq_len=4, obs_shape=(3, 8, 8), action_dim=1, state_dim=1)
    _fill(rb, 100, stack=4)
    batch = rb.sample(8)
    assert batch["obs"].shape[2] == 3 and not torch.any(batch["obs"] == 255)
    storage = rb._buffer.storage._storage
    assert storage["obs"].shape == (500, 3, 8, 8)


def test_bytes_per_transition_matches_storage():
    rb = SequenceReplay(100, seq_len=4, obs_shape=(3, 64, 64), action_dim=2, state_dim=3)
    _fill(rb, 10)
    storage = rb._buffer.storage._storage
    stored = sum(t.element_size() * t[0].numel() for t in storage.values())
    assert stored == rb.bytes_per_transition


@pytest.mark.parametrize("on_disk", [False, True])
def test_save_and_load_round_trip(tmp_path, on_disk):
    kwargs = dict(obs_shape=(3, 8, 8), action_dim=2, num_envs=2, state_dim=1)
    rb = SequenceReplay(300, 5, scratch_dir=tmp_path / "live" if on_disk else None, **kwargs)
    _fill(rb, 400, seed=1)
    rb.save(tmp_path / "saved")
    restored = SequenceReplay(300, 5, scratch_dir=tmp_path / "live2" if on_disk else None, **kwargs)
    restored.load(tmp_path / "saved")
    assert len(restored) == len(rb)
    torch.manual_seed(3)
    a = rb.sample(16)
    torch.manual_seed(3)
    b = restored.sample(16)
    for key in ("obs", "action", "reward", "state", "episode", "step"):
        assert torch.equal(a[key], b[key]), key
    # Writing continues at the same place in both.
    _fill(rb, 50, seed=2)
    _fill(restored, 50, seed=2)
    assert torch.equal(rb._buffer.storage._storage["state"], restored._buffer.storage._storage["state"])


def test_load_refuses_another_layout(tmp_path):
    rb = SequenceReplay(300, 5, obs_shape=(3, 8, 8), action_dim=2, state_dim=1)
    _fill(rb, 50)
    rb.save(tmp_path / "saved")
    other = SequenceReplay(300, 5, obs_shape=(3, 16, 16), action_dim=2, state_dim=1)
    with pytest.raises(ReplayError, match="obs_shape"):
        other.load(tmp_path / "saved")
    with pytest.raises(ReplayError, match="not a saved replay"):
        other.load(tmp_path / "nothing-here")


def test_bad_shapes_and_early_sampling_are_refused():
    rb = SequenceReplay(100, 10, obs_shape=(3, 8, 8), action_dim=1, num_envs=2)
    with pytest.raises(ReplayError, match=r"obs must be \(2, 3\*k, 8, 8\) uint8"):
        rb.add(np.zeros((2, 3, 8, 8), np.float32), np.zeros((2, 1)), np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ReplayError, match="No episode of 10 steps"):
        rb.sample(4)
    with pytest.raises(ReplayError, match=r"action must have shape \(2, 1\)"):
        rb.add(np.zeros((2, 3, 8, 8), np.uint8), np.zeros((2, 4)), np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ReplayError, match="state"):
        SequenceReplay(100, 10, obs_shape=(3, 8, 8), action_dim=1, state_dim=2).add(
            np.zeros((1, 3, 8, 8), np.uint8), np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1), np.ones(1))


def test_memory_mapped_replay_must_live_on_the_cpu(tmp_path):
    with pytest.raises(ReplayError, match="lives on the CPU"):
        SequenceReplay(100, 4, (3, 8, 8), 1, scratch_dir=tmp_path, device="meta")


def test_row_bytes_sizes_a_replay_before_it_exists():
    rb = SequenceReplay(100, 4, (3, 64, 64), 2, state_dim=3)
    assert SequenceReplay.row_bytes((3, 64, 64), 2, 3) == rb.bytes_per_transition == 12288 + 8 + 4 + 3 + 16 + 12


# --- saved replays: only the filled rows, and nothing that can run code or load as zeros -------------
_Usage = namedtuple("_Usage", "total used free")  # what shutil.disk_usage returns


class _Touch:
    """Unpickling this creates `path`: a stand-in for the code a tampered file could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _saved(tmp_path, rows: int = 60, **kwargs) -> tuple[SequenceReplay, Path]:
    rb = SequenceReplay(300, 5, obs_shape=(3, 8, 8), action_dim=2, state_dim=1, **kwargs)
    _fill(rb, rows)
    rb.save(tmp_path / "saved")
    return rb, tmp_path / "saved"


def test_save_writes_only_the_filled_rows(tmp_path):
    rb = SequenceReplay(5_000, 4, obs_shape=(3, 64, 64), action_dim=1, state_dim=1)
    _fill(rb, 100)
    rb.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "storage" / "obs.memmap").stat().st_size == 100 * 3 * 64 * 64
    on_disk = sum(f.stat().st_size for f in (tmp_path / "saved").rglob("*.memmap"))
    assert on_disk == 100 * rb.bytes_per_transition
    restored = SequenceReplay.from_saved(tmp_path / "saved", 4)
    assert len(restored) == 100 and restored._buffer.storage._storage["obs"].shape[0] == 5_000


def test_a_wrapped_replay_samples_identically_after_load(tmp_path):
    kwargs = dict(obs_shape=(3, 8, 8), action_dim=1, num_envs=1, state_dim=1)
    rb = SequenceReplay(100, 4, **kwargs)
    _fill(rb, 250, p_end=0.0)  # one long episode through the write head
    rb.save(tmp_path / "saved")
    restored = SequenceReplay(100, 4, **kwargs)
    restored.load(tmp_path / "saved")
    assert restored._buffer.storage._last_cursor_index == rb._buffer.storage._last_cursor_index == 49
    for seed in range(3):
        torch.manual_seed(seed)
        a = rb.sample(32)
        torch.manual_seed(seed)
        b = restored.sample(32)
        assert torch.equal(a["state"], b["state"]) and torch.equal(a["episode"], b["episode"])
        _check_sequences(b)  # never across the write head


def test_an_empty_replay_saves_and_loads(tmp_path):
    rb = SequenceReplay(100, 4, obs_shape=(3, 8, 8), action_dim=1)
    rb.save(tmp_path / "saved")
    restored = SequenceReplay.from_saved(tmp_path / "saved", 4)
    assert len(restored) == 0 and not restored.can_sample()


def test_a_format_1_replay_still_loads(tmp_path):
    """What the previous version wrote: torchrl's dumps of the whole capacity, the cursor in writer/."""
    rb = SequenceReplay(300, 5, obs_shape=(3, 8, 8), action_dim=2, num_envs=2, state_dim=1)
    _fill(rb, 200, seed=4)
    path = tmp_path / "v1"
    path.mkdir()
    rb._buffer.storage.dumps(path / "storage")
    rb._buffer.writer.dumps(path / "writer")
    meta = {"format_version": 1, "capacity": 300, "seq_len": 5, "obs_shape": [3, 8, 8], "action_dim": 2,
            "num_envs": 2, "state_dim": 1, "episode": rb._episode.tolist(), "step": rb._step.tolist(),
            "next_episode": rb._next_episode, "longest": rb._longest}
    (path / "meta.json").write_text(json.dumps(meta))
    restored = SequenceReplay.from_saved(path, 5)
    torch.manual_seed(0)
    a = rb.sample(16)
    torch.manual_seed(0)
    assert torch.equal(a["state"], restored.sample(16)["state"]) and len(restored) == len(rb) == 300


@pytest.mark.parametrize("column", ["evil", "obs"])
def test_a_replay_with_a_pickled_entry_is_refused_and_never_unpickled(tmp_path, column):
    _, path = _saved(tmp_path)
    marker = tmp_path / "ran"
    storage = TensorDict.load_memmap(path / "storage").clone()
    storage[column] = NonTensorData(_Touch(marker), batch_size=storage.batch_size)
    storage.memmap(path / "storage", existsok=True)
    assert "NonTensorData" in (path / "storage" / "meta.json").read_text()
    with pytest.raises(ReplayError, match=f"Refusing to load the saved replay: storage/meta.json lists '{column}'.*could run code"):
        SequenceReplay.from_saved(path, 5)
    assert not marker.exists()


def test_a_truncated_column_is_refused_naming_the_file_and_sizes(tmp_path):
    _, path = _saved(tmp_path)
    obs = path / "storage" / "obs.memmap"
    with open(obs, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ReplayError, match=r"obs\.memmap holds 1,000 bytes, its metadata says \[60, 3, 8, 8\] "
                                          r"torch\.uint8 = 11,520 bytes"):
        SequenceReplay.from_saved(path, 5)


def _garble(file: Path) -> None:
    file.write_text("{not json")


def _cut(file: Path) -> None:
    file.write_text(file.read_text()[: len(file.read_text()) // 2])


def _edit(file: Path, key: str, value) -> None:
    data = json.loads(file.read_text())
    data[key] = value
    file.write_text(json.dumps(data))


@pytest.mark.parametrize("damage,match", [
    (lambda p: _garble(p / "meta.json"), r"meta\.json is garbled or truncated"),
    (lambda p: _cut(p / "meta.json"), r"meta\.json is garbled or truncated"),
    (lambda p: _edit(p / "meta.json", "cursor", "x"), r"meta\.json is damaged \(bad or missing cursor\)"),
    (lambda p: _edit(p / "meta.json", "rows", 500), "its counters do not agree"),
    (lambda p: (p / "meta.json").write_bytes(b"\xff\xfe\x00garbage"), r"meta\.json is garbled or truncated"),
    (lambda p: _garble(p / "storage" / "meta.json"), r"storage/meta\.json is garbled or truncated"),
    (lambda p: _cut(p / "storage" / "meta.json"), r"storage/meta\.json is garbled or truncated"),
    (lambda p: _edit(p / "storage" / "meta.json", "obs", {"shape": [60, 3, 8, 8], "dtype": "torch.float32"}),
     r"says obs is \[60, 3, 8, 8\] torch\.float32, expected \[60, 3, 8, 8\] torch\.uint8"),
    (lambda p: (p / "storage" / "reward.memmap").unlink(), r"reward\.memmap holds 0 bytes"),
])
def test_a_damaged_replay_is_one_replay_error(tmp_path, damage, match):
    _, path = _saved(tmp_path)
    damage(path)
    with pytest.raises(ReplayError, match=match):
        SequenceReplay.from_saved(path, 5)


def test_save_checks_free_space_first_and_keeps_what_was_there(tmp_path, monkeypatch):
    rb, path = _saved(tmp_path)
    before = (path / "meta.json").read_text()
    _fill(rb, 10, seed=5)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ReplayError, match=r"Not enough free disk space to save the replay \(70 transitions\)"):
        rb.save(path)
    assert (path / "meta.json").read_text() == before
    with pytest.raises(ReplayError, match="Not enough free disk space"):
        rb.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def _mixed(action_dims=(1, 3), rows=60) -> MixedReplay:
    sources = []
    for i, dim in enumerate(action_dims):
        rb = SequenceReplay(200, 4, (3, 8, 8), dim, state_dim=2)
        _fill(rb, rows, seed=i)
        sources.append(rb)
    return MixedReplay(sources, [f"env{i}" for i in range(len(action_dims))],
                       [{"action_repeat": 2, "action_dim": d} for d in action_dims])


def test_mixed_replay_samples_every_source_equally_and_pads_actions():
    mixed = _mixed((1, 3, 2))
    assert mixed.action_dim == 3 and mixed.can_sample() and len(mixed) == 180
    assert mixed.shares(7) == [3, 2, 2]
    batch = mixed.sample(7)
    assert batch.batch_size == torch.Size([7, 4]) and batch["action"].shape == (7, 4, 3)
    assert "state" not in batch.keys()
    first = batch["action"][:3]                      # grouped by source in order: env0's 3 come first
    assert (first[..., 1:] == 0).all() and (first[..., 0] != 0).any()
    assert mixed.shares(7) == [2, 3, 2]              # the remainder rotates from call to call
    assert torch.all(batch["episode"] == batch["episode"][:, :1]) and torch.all(batch["step"].diff(dim=1) == 1)


def test_mixed_replay_saves_and_loads(tmp_path):
    mixed = _mixed()
    mixed.save(tmp_path / "mixed")
    assert MixedReplay.saved_sources(tmp_path / "mixed") == [
        {"name": "env0", "action_repeat": 2, "action_dim": 1}, {"name": "env1", "action_repeat": 2, "action_dim": 3}]
    back = MixedReplay.from_saved(tmp_path / "mixed", seq_len=4)
    assert back.names == mixed.names and len(back) == len(mixed) and back.action_dim == 3
    assert back.sample(4)["obs"].shape == (4, 4, 3, 8, 8)
    (tmp_path / "mixed" / "mixed.json").write_text('{"format_version": 1, "sources": "x"}')
    with pytest.raises(ReplayError, match="mixed.json is damaged"):
        MixedReplay.from_saved(tmp_path / "mixed", seq_len=4)


def test_mixed_replay_refuses_sources_of_other_frame_shapes():
    a, b = SequenceReplay(50, 4, (3, 8, 8), 1), SequenceReplay(50, 4, (3, 16, 16), 1)
    with pytest.raises(ReplayError, match="one frame shape"):
        MixedReplay([a, b], ["a", "b"])
