"""Parallel collection: N asynchronous envs through one Collector store each env's episodes exactly
as that env alone would have produced them."""

import numpy as np
import torch

from agents.training.collect import Collector
from envs import make_env, make_vector_env
from worldmodel.actions import ActionSpec
from worldmodel.replay import SequenceReplay

N, STEPS, SEED = 3, 60, 11


def _actions(rng: np.random.Generator) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, 2, N)), 2).float()


def test_vector_collection_stores_every_env_episode_correctly():
    envs = make_vector_env("CartPole-v1", N, seed=SEED, asynchronous=True, image_size=16, action_repeat=2)
    spec = ActionSpec.from_space(envs.single_action_space)
    replay = SequenceReplay(1_000, 4, (3, 16, 16), spec.dim, num_envs=N, state_dim=4)
    collector = Collector(envs, spec, replay, action_repeat=2, seed=SEED)
    rng = np.random.default_rng(0)
    actions = [_actions(rng) for _ in range(STEPS)]
    finished = []
    for action in actions:
        finished += collector.step(action).episodes
    envs.close()
    assert finished, "CartPole with random actions ends episodes within 60 steps"

    rows = replay._buffer.storage[: len(replay)]
    # Replay each env alone with the same seed and actions (the step after an end restarts it).
    for i in range(N):
        env = make_env("CartPole-v1", image_size=16, action_repeat=2)
        obs, info = env.reset(seed=SEED + i)
        expected = [(obs, info["state"], 0.0, False, True)]
        restart = False
        for action in actions:
            if restart:
                obs, info = env.reset()
                expected.append((obs, info["state"], 0.0, False, True))
                restart = False
                continue
            obs, reward, terminated, truncated, info = env.step(int(action[i].argmax()))
            expected.append((obs, info["state"], reward, terminated, False))
            restart = terminated or truncated
        env.close()
        mine = rows[i::N]  # the replay's rows of env i, in time order (no wrap-around here)
        assert len(mine) == len(expected)
        assert torch.equal(mine["obs"], torch.as_tensor(np.stack([e[0] for e in expected])))
        assert torch.allclose(mine["state"], torch.as_tensor(np.stack([e[1] for e in expected]), dtype=torch.float32))
        assert torch.allclose(mine["reward"], torch.tensor([e[2] for e in expected], dtype=torch.float32))
        assert mine["terminated"].tolist() == [e[3] for e in expected]
        assert mine["is_first"].tolist() == [e[4] for e in expected]
        # Episode ids change exactly at first frames; steps count from 0 within each episode.
        ids, steps = mine["episode"].tolist(), mine["step"].tolist()
        for t in range(1, len(ids)):
            assert (ids[t] != ids[t - 1]) == mine["is_first"][t].item()
            assert steps[t] == (0 if mine["is_first"][t] else steps[t - 1] + 1)
    # Episode ids are never shared between envs.
    per_env = [set(rows[i::N]["episode"].tolist()) for i in range(N)]
    assert not any(per_env[a] & per_env[b] for a in range(N) for b in range(a + 1, N))
    # Sampled sequences are 4 consecutive steps of one episode.
    batch = replay.sample(32)
    assert (batch["episode"] == batch["episode"][:, :1]).all()
    assert (batch["step"].diff(dim=1) == 1).all()


def test_training_with_parallel_envs_end_to_end(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from agents.analysis.metrics import read_metrics
    from agents.training.runs import RunDir

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "scripts" / "train.py"), "preset=debug", "num_envs=2",
                           "eval_episodes=2", "steps=300", "tensorboard=false", f"run_dir={tmp_path / 'run'}"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert any("eval/return" in r for r in records) and any("loss/total" in r for r in records)
    _, _, state = RunDir.open(tmp_path / "run").load("latest")
    assert state["counters"]["env_steps"] >= 300 and state["counters"]["agent_steps"] * 2 * 2 >= 300
