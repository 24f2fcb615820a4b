"""Perturbation wrappers: dtype and shape kept, deterministic under a seed, severity scales, the
recorded-frames path matches the wrapper, bad specs fail with one clear message."""

import re

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import (
    PERTURBATIONS,
    EnvError,
    Perturb,
    PerturbationError,
    make_env,
    make_vector_env,
    parse_perturbation,
    parse_perturbations,
    perturb_frames,
)

NAMES = list(PERTURBATIONS)


def rollout(env, seed: int, steps: int = 5) -> np.ndarray:
    """Observations `(steps + 1, C, H, W)` of an episode reset with `seed`, under fixed actions."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(np.full(env.action_space.shape, 0.5, np.float32))
        out.append(obs)
    return np.stack(out)


@pytest.fixture(scope="module")
def clean_frames() -> np.ndarray:
    return rollout(make_env("Pendulum-v1", image_size=32), seed=3)  # (6, 3, 32, 32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stack", [1, 3])
def test_wrapper_keeps_dtype_shape_and_space(name, stack):
    env = make_env("Pendulum-v1", image_size=32, frame_stack=stack, perturb=f"{name}:3", seed=0)
    assert isinstance(env, Perturb)
    assert env.observation_space.shape == (3 * stack, 32, 32) and env.observation_space.dtype == np.uint8
    frames = rollout(env, seed=1)
    assert frames.dtype == np.uint8 and frames.shape == (6, 3 * stack, 32, 32)
    assert all(env.observation_space.contains(f) for f in frames)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_episode_other_seed_differs(name):
    env = make_env("Pendulum-v1", image_size=32, perturb=f"{name}:4")
    a, b = rollout(env, seed=7), rollout(env, seed=7)
    np.testing.assert_array_equal(a, b)
    clean = make_env("Pendulum-v1", image_size=32)
    frames = rollout(clean, seed=7)
    other = perturb_frames(frames, name, 4, seed=8)
    assert not np.array_equal(perturb_frames(frames, name, 4, seed=7), other)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stack", [1, 3])
def test_wrapper_shows_exactly_perturb_frames_of_the_clean_episode(name, stack):
    """The recorded-frames path and the wrapper cannot drift apart: both are `perturb_frames`."""
    clean = rollout(make_env("Pendulum-v1", image_size=32, frame_stack=stack), seed=11)
    shifted = rollout(make_env("Pendulum-v1", image_size=32, frame_stack=stack, perturb=f"{name}:5"), seed=11)
    newest = perturb_frames(clean[:, -3:], name, 5, seed=11)
    np.testing.assert_array_equal(shifted[:, -3:], newest)
    if stack == 3:
        # Every frame looks the same in each stack it appears in: step t's slot 0 is step t - 2's newest.
        np.testing.assert_array_equal(shifted[2:, :3], newest[:-2])
        np.testing.assert_array_equal(shifted[0, :3], newest[0])


@pytest.mark.parametrize("name", NAMES)
def test_higher_severity_changes_more(clean_frames, name):
    def change(severity: int) -> float:
        shifted = perturb_frames(clean_frames, name, severity, seed=5)
        return float(np.abs(shifted.astype(int) - clean_frames).mean())

    low, mid, high = change(1), change(3), change(5)
    assert 0 < low < mid < high


def test_noise_spares_the_object(clean_frames):
    shifted = perturb_frames(clean_frames, "noise", 5, seed=0)
    red = (clean_frames[:, 0] > 150) & (clean_frames[:, 1] < 120)  # Pendulum's rod
    assert red.any()
    np.testing.assert_array_equal(shifted.transpose(0, 2, 3, 1)[red], clean_frames.transpose(0, 2, 3, 1)[red])


def test_distractors_move_smoothly_within_an_episode():
    blank = np.full((20, 3, 32, 32), 255, np.uint8)
    shifted = perturb_frames(blank, "distractors", 1, seed=2)
    centres = [np.argwhere((f != 255).any(0)).mean(0) for f in shifted]
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert steps.max() < 3.0 and steps.sum() > 5.0  # moves, at ~3% of the side per step


def test_color_and_brightness_are_fixed_per_episode():
    blank = np.full((4, 3, 16, 16), 200, np.uint8)
    for name in ("color", "brightness"):
        shifted = perturb_frames(blank, name, 5, seed=1)
        assert (shifted == shifted[:1]).all() and not (shifted == blank).all()


def test_vector_env_is_perturbed_and_reproducible():
    def run() -> np.ndarray:
        envs = make_vector_env("Pendulum-v1", 2, seed=4, asynchronous=False, image_size=32, perturb="distractors:2")
        obs = [envs.reset(seed=4)[0]]
        for _ in range(3):
            obs.append(envs.step(np.zeros((2, 1), np.float32))[0])
        envs.close()
        return np.stack(obs)

    a, b = run(), run()
    assert a.shape == (4, 2, 3, 32, 32) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    clean = make_vector_env("Pendulum-v1", 2, seed=4, asynchronous=False, image_size=32)
    assert not np.array_equal(clean.reset(seed=4)[0], a[0])
    clean.close()


def test_unseeded_resets_follow_the_seeded_one():
    env = make_env("Pendulum-v1", image_size=32, perturb="noise:3")
    runs = []
    for _ in range(2):
        env.reset(seed=9)
        runs.append(np.stack([env.reset()[0] for _ in range(3)]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_gymnasium_checker_passes():
    env = make_env("CartPole-v1", image_size=32, frame_stack=2, perturb="color:2", seed=0)
    check_env(env, skip_render_check=True)
    env.close()


def test_parse():
    assert parse_perturbation("color:3") == ("color", 3)
    assert parse_perturbation(" noise : 5 ") == ("noise", 5)
    assert parse_perturbations("color:3,distractors:1") == [("color", 3), ("distractors", 1)]
    assert parse_perturbations("") == []


@pytest.mark.parametrize("spec,match", [
    ("colour:3", "Unknown perturbation 'colour'. Did you mean 'color'? Choose one of: color, brightness"),
    ("color", "is not name:severity"),
    ("color:0", "pass an integer in 1..5"),
    ("color:6", "pass an integer in 1..5"),
    ("color:high", "pass an integer in 1..5"),
    ("", "is not name:severity"),
])
def test_bad_specs_raise_one_clear_error(spec, match):
    with pytest.raises(PerturbationError, match=re.escape(match)):
        parse_perturbation(spec)
    with pytest.raises(EnvError, match=re.escape(match)):
        make_env("Pendulum-v1", perturb=spec)


def test_bad_frames_and_seed_are_refused(clean_frames):
    with pytest.raises(PerturbationError, match="split frame stacks"):
        perturb_frames(np.zeros((2, 6, 8, 8), np.uint8), "color", 1, seed=0)
    with pytest.raises(PerturbationError, match="non-negative integer episode seed"):
        perturb_frames(clean_frames, "color", 1, seed=-1)
