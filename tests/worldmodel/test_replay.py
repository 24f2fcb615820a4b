import numpy as np
import pytest
import torch

from worldmodel.replay import ReplayError, SequenceReplay


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
