import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import (
    EnvError,
    MissingExtraError,
    NotRenderableError,
    UnknownEnvError,
    UnsupportedActionSpaceError,
    make_env,
    make_vector_env,
)

CLASSIC = ["Pendulum-v1", "CartPole-v1", "MountainCarContinuous-v0", "Acrobot-v1"]


@pytest.mark.parametrize("env_id", CLASSIC)
def test_gymnasium_checker_passes(env_id):
    env = make_env(env_id, image_size=32, frame_stack=2, action_repeat=2, seed=0)
    check_env(env, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", CLASSIC)
@pytest.mark.parametrize("size,stack", [(64, 1), (48, 3)])
def test_observation_shape_dtype_and_state(env_id, size, stack):
    env = make_env(env_id, image_size=size, frame_stack=stack, seed=1)
    assert env.observation_space.shape == (3 * stack, size, size)
    assert env.observation_space.dtype == np.uint8
    obs, info = env.reset(seed=1)
    assert obs.shape == (3 * stack, size, size) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert info["state"].dtype == np.float32 and info["state"].ndim == 1
    obs, _, _, _, info = env.step(env.action_space.sample())
    assert obs.shape == (3 * stack, size, size) and "state" in info
    assert obs.max() > obs.min(), "a rendered frame should not be blank"
    env.close()


def test_frames_show_the_state():
    """Different states render to different frames (the pixels carry the information)."""
    env = make_env("Pendulum-v1", seed=0)
    a, _ = env.reset(seed=0)
    b, _ = env.reset(seed=5)
    assert np.abs(a.astype(int) - b.astype(int)).sum() > 0


def test_frame_stack_shifts_oldest_out():
    env = make_env("Pendulum-v1", frame_stack=3, seed=0)
    obs0, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs0[:3], obs0[6:])  # stack filled with the first frame
    obs1, *_ = env.step(np.ones(1, np.float32))
    np.testing.assert_array_equal(obs1[:3], obs0[3:6])
    np.testing.assert_array_equal(obs1[3:6], obs0[6:])


def test_continuous_actions_are_scaled_to_unit_box():
    env = make_env("Pendulum-v1", seed=0)
    assert isinstance(env.action_space, gym.spaces.Box)
    np.testing.assert_array_equal(env.action_space.low, [-1.0])
    np.testing.assert_array_equal(env.action_space.high, [1.0])
    env.reset(seed=0)
    env.step(np.array([0.5], np.float32))
    assert env.unwrapped.last_u == pytest.approx(1.0)  # Pendulum's torque range is [-2, 2]
    env.step(np.array([3.0], np.float32))  # out of range: clipped, not extrapolated
    assert env.unwrapped.last_u == pytest.approx(2.0)


def test_discrete_actions_stay_discrete():
    env = make_env("CartPole-v1", seed=0)
    assert env.action_space == gym.spaces.Discrete(2)


def test_action_repeat_sums_rewards_like_manual_stepping():
    repeated = make_env("Pendulum-v1", action_repeat=3, seed=0)
    single = make_env("Pendulum-v1", action_repeat=1, seed=0)
    repeated.reset(seed=7)
    single.reset(seed=7)
    action = np.array([0.3], np.float32)
    for _ in range(4):
        _, r3, *_ = repeated.step(action)
        manual = sum(single.step(action)[1] for _ in range(3))
        assert r3 == pytest.approx(manual)


def test_action_repeat_stops_at_termination_and_keeps_flags_apart():
    plain = gym.make("CartPole-v1")
    plain.reset(seed=0)
    falls_after = 1
    while not plain.step(1)[2]:  # always push right: falls quickly
        falls_after += 1
    assert falls_after % 3 != 0  # so the last repeat is cut short
    env = make_env("CartPole-v1", action_repeat=3, seed=0)
    env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, reward, terminated, truncated, _ = env.step(1)
        steps += 1
    assert terminated and not truncated
    assert steps == -(-falls_after // 3) and reward == falls_after - 3 * (steps - 1)

    env = make_env("Pendulum-v1", action_repeat=7, seed=0)  # 200 steps: last repeat is cut short
    env.reset(seed=0)
    total_steps = 0
    for _ in range(100):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        total_steps += 1
        if terminated or truncated:
            break
    assert truncated and not terminated and total_steps == 29  # ceil(200 / 7)


def test_seed_makes_resets_reproducible():
    a = make_env("CartPole-v1", seed=3)
    b = make_env("CartPole-v1", seed=3)
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(ia["state"], ib["state"])


def test_unknown_id_suggests_close_ids():
    with pytest.raises(UnknownEnvError, match="Did you mean: Pendulum-v1"):
        make_env("Pendulum")
    with pytest.raises(UnknownEnvError, match="CartPole-v1"):
        make_env("Cartpole-v1")
    with pytest.raises(UnknownEnvError, match="Unknown environment id"):
        make_env("NoSuchThingAtAll-v9")
    with pytest.raises(UnknownEnvError, match="Atari ids look like 'ALE/Pong-v5'"):
        make_env("Qwzx")
    with pytest.raises(UnknownEnvError, match="non-empty string"):
        make_env("")


class _NoRender(gym.Env):
    metadata = {"render_modes": []}
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


class _OddActions(_NoRender):
    metadata = {"render_modes": ["rgb_array"]}
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def render(self):
        return np.zeros((8, 8, 3), np.uint8)


@pytest.fixture(scope="module", autouse=True)
def _test_envs():
    gym.register("NoRenderTest-v0", entry_point=_NoRender)
    gym.register("OddActionsTest-v0", entry_point=_OddActions)
    yield
    gym.registry.pop("NoRenderTest-v0")
    gym.registry.pop("OddActionsTest-v0")


def test_env_that_cannot_render_is_refused():
    with pytest.raises(NotRenderableError, match="cannot render 'rgb_array'"):
        make_env("NoRenderTest-v0")


def test_unsupported_action_space_is_refused():
    with pytest.raises(UnsupportedActionSpaceError, match="MultiDiscrete"):
        make_env("OddActionsTest-v0")


def test_unbounded_box_actions_are_refused():
    class _Unbounded(_OddActions):
        action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    gym.register("UnboundedTest-v0", entry_point=_Unbounded)
    try:
        with pytest.raises(UnsupportedActionSpaceError, match="unbounded Box"):
            make_env("UnboundedTest-v0")
    finally:
        gym.registry.pop("UnboundedTest-v0")


def test_custom_renderable_env_works_and_is_resized():
    gym.register("Renderable8-v0", entry_point=_OddActions)
    try:
        # MultiDiscrete is refused; a Discrete subclass of the same env passes and is resized.
        class _Ok(_OddActions):
            action_space = gym.spaces.Discrete(3)

        gym.registry["Renderable8-v0"].entry_point = _Ok
        env = make_env("Renderable8-v0", image_size=16)
        obs, info = env.reset()
        assert obs.shape == (3, 16, 16) and "state" in info
    finally:
        gym.registry.pop("Renderable8-v0")


@pytest.mark.parametrize(
    "env_id,module,extra",
    [("ALE/Pong-v5", "ale_py", "atari"), ("dm_control/cartpole-swingup-v0", "shimmy", "dmc"), ("HalfCheetah-v5", "mujoco", "mujoco")],
)
def test_missing_extra_names_the_extra(env_id, module, extra):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed")
    with pytest.raises(MissingExtraError, match=rf"\.\[{extra}\]"):
        make_env(env_id)


@pytest.mark.parametrize("kwargs", [dict(image_size=8), dict(image_size=1024), dict(image_size=64.5),
                                    dict(frame_stack=0), dict(frame_stack=17), dict(action_repeat=0)])
def test_out_of_range_sizes_are_refused(kwargs):
    with pytest.raises(EnvError, match="out of range"):
        make_env("Pendulum-v1", **kwargs)


def test_errors_share_one_family():
    for cls in (UnknownEnvError, MissingExtraError, NotRenderableError, UnsupportedActionSpaceError):
        assert issubclass(cls, EnvError) and issubclass(cls, ValueError)
    assert envs.EnvError is EnvError


@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_env_steps_and_autoresets(asynchronous):
    vec = make_vector_env("CartPole-v1", 2, seed=0, asynchronous=asynchronous, image_size=32)
    try:
        obs, info = vec.reset(seed=0)
        assert obs.shape == (2, 3, 32, 32) and obs.dtype == np.uint8
        assert info["state"].shape == (2, 4)
        done_seen = np.zeros(2, bool)
        for _ in range(200):
            obs, reward, terminated, truncated, info = vec.step(np.ones(2, np.int64))
            done = terminated | truncated
            if done_seen.any():
                # NEXT_STEP autoreset: the step after an episode ends starts a new one with reward 0.
                assert np.all(reward[done_seen] == 0.0)
                break
            done_seen = done
        assert done_seen.any()
    finally:
        vec.close()


@pytest.mark.parametrize("num_envs", [0, 2000])
def test_vector_env_refuses_a_bad_number_of_envs(num_envs):
    with pytest.raises(EnvError, match="num_envs"):
        make_vector_env("Pendulum-v1", num_envs)


def test_vector_env_refuses_bad_id_in_the_parent_process():
    with pytest.raises(UnknownEnvError):
        make_vector_env("Pendulum", 2)


def test_sigterm_still_stops_a_process_that_rendered_with_pygame():
    """SDL (under classic control's pygame) catches SIGTERM unless told not to; `kill` must stop a run."""
    import signal
    import subprocess
    import sys

    code = ("import envs, sys, time\n"
            "env = envs.make_env('Pendulum-v1', image_size=32, seed=0)\n"
            "env.reset(seed=0); env.step(env.action_space.sample())\n"
            "print('rendered', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "rendered"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM
    finally:
        proc.kill()
