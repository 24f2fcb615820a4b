"""Gymnasium wrappers that turn a rendering environment into a pixel environment.

The stack built by `envs.make_env`, innermost first:

    base env (TimeLimit included) -> DmcRender (DeepMind Control only) -> DmcColors (`perturb=color_easy|hard`, `color_all_easy|hard`)
    -> RescaleAction([-1, 1]) -> clip to [-1, 1]   (Box actions only)
    -> ActionRepeat -> PixelObservation -> FrameStack -> Perturb (`perturb=`, envs/perturb.py)

Action repeat sits *inside* the pixel wrapper so a frame is rendered once per agent step, not
once per repeated simulator step: rendering is the expensive part.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import gymnasium as gym
import numpy as np


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Repeat each action `repeat` times, summing rewards.

    Stops early at termination or truncation; `terminated` and `truncated` are passed through
    unchanged, and `info` is the last inner step's.
    """

    def __init__(self, env: gym.Env, repeat: int):
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = int(repeat)

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def flatten_state(obs: Any) -> np.ndarray | None:
    """The low-dimensional state behind an observation, as a flat float32 vector.

    A vector `Box` observation (classic control, MuJoCo) is the state itself; a dict of arrays
    (DeepMind Control) is concatenated in key order. Image observations (Atari) have no state.
    """
    if isinstance(obs, dict):
        parts = [np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in sorted(obs)]
        return np.concatenate(parts) if parts else None
    arr = np.asarray(obs)
    if arr.ndim <= 1 and np.issubdtype(arr.dtype, np.number):
        return arr.astype(np.float32).reshape(-1)
    return None


# Environments whose own renderer draws correctly at a small size: setting these attributes
# before the first render skips drawing 500x500 and resizing (3-30x faster). CartPole and
# MountainCar are *not* here: drawn natively small they come out broken (cart off-screen).
_NATIVE_SIZE_ATTRS: dict[str, tuple[str, ...]] = {
    "PendulumEnv": ("screen_dim",),
    "AcrobotEnv": ("SCREEN_DIM",),
}


SHADOW_MAP = 1024
"""Side of the shadow map DeepMind Control scenes are rendered with by `DmcRender` (the suite's models
ask for 2048). On the six PlaNet tasks at 64, 84 and 128 pixels the frames differ from the suite's by
0.002-0.017 of 255 on average, a few shadow-edge pixels (tests/envs/test_dmc_render.py checks
walker-walk); with the persistent camera, software GL (Mesa llvmpipe) draws a frame 1.1-1.9x faster."""


class DmcRender(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Render a DeepMind Control env (shimmy's `dm_control/...`) through one persistent camera.

    shimmy's `render()` builds a new dm_control `Camera`, with its scene, for every frame, and the
    suite's scenes cast shadows from a 2048x2048 map; in software GL both cost more than drawing a
    64x64 frame. This keeps one camera (rebuilt when the physics is reloaded, as `DmcColors` does
    at each reset) and a `SHADOW_MAP`-sized shadow map: the same frames, to a few shadow-edge
    pixels, 1.1-1.9x as fast (docs/results.md). Shadows and reflections stay on, so frames look as the published
    DMC results saw them.

    Args:
        env: the base env from `gymnasium.make("dm_control/...", render_mode="rgb_array")`.
        width, height: frame size in pixels.
        camera_id: the camera, as dm_control names it (-1: the free camera; the PlaNet protocol uses 0).

    Shapes:
        render: `(height, width, 3)` uint8, a new array each call.
    """

    def __init__(self, env: gym.Env, width: int, height: int, camera_id: int | str = -1):
        gym.utils.RecordConstructorArgs.__init__(self, width=width, height=height, camera_id=camera_id)
        gym.Wrapper.__init__(self, env)
        self.width, self.height, self.camera_id = int(width), int(height), camera_id
        self._physics = env.unwrapped._env.physics
        self._camera, self._model = None, None

    def render(self) -> np.ndarray:
        from dm_control.mujoco.engine import Camera

        physics = self._physics
        if self._camera is None or self._model is not physics.model.ptr:  # first frame, or a reloaded physics
            quality = physics.model.vis.quality
            quality.shadowsize = min(int(quality.shadowsize), SHADOW_MAP)  # read when the GL context is made
            made = physics._contexts  # made already (something else rendered first): make it again, with the cap
            if made is not None and made.mujoco is not None and made.mujoco.ptr.shadowSize > SHADOW_MAP:
                physics._free_rendering_contexts()
            self._camera = Camera(physics, height=self.height, width=self.width, camera_id=self.camera_id)
            self._model = physics.model.ptr
        return np.array(self._camera.render())  # a copy: the camera reuses its buffer

    def close(self) -> None:
        if self._camera is not None:
            self._camera._scene.free()
            self._camera = None
        super().close()


class PixelObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace observations by rendered frames: `(3, size, size) uint8`, channels first.

    The wrapped observation (the low-dimensional state, where there is one) moves to
    `info["state"]` as float32, for probing what the learned latents hold.
    """

    def __init__(self, env: gym.Env, image_size: int):
        gym.utils.RecordConstructorArgs.__init__(self, image_size=image_size)
        gym.Wrapper.__init__(self, env)
        self.image_size = int(image_size)
        self.observation_space = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        inner = env.unwrapped
        for attr in _NATIVE_SIZE_ATTRS.get(type(inner).__name__, ()):
            setattr(inner, attr, image_size)

    def _frame(self) -> np.ndarray:
        frame = self.env.render()
        if frame is None:
            raise RuntimeError(f"{self.env.spec.id if self.env.spec else self.env} rendered None")
        frame = np.asarray(frame)
        if frame.shape[:2] != (self.image_size, self.image_size):
            frame = cv2.resize(frame, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame[..., :3].transpose(2, 0, 1))

    def _with_state(self, obs: Any, info: dict) -> dict:
        state = flatten_state(obs)
        if state is not None:
            info = dict(info)
            info["state"] = state
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._frame(), self._with_state(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._frame(), reward, terminated, truncated, self._with_state(obs, info)


class FrameStack(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Concatenate the last `k` frames along channels: `(3k, H, W) uint8`, oldest first.

    At reset the first frame fills the stack. The replay never stores these stacks: it keeps the
    newest frame only (see `worldmodel.replay`).
    """

    def __init__(self, env: gym.Env, k: int):
        gym.utils.RecordConstructorArgs.__init__(self, k=k)
        gym.Wrapper.__init__(self, env)
        self.k = int(k)
        c, h, w = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (c * self.k, h, w), np.uint8)
        self._frames: deque[np.ndarray] = deque(maxlen=self.k)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._frames.extend([obs] * self.k)
        return np.concatenate(self._frames, axis=0), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs)
        return np.concatenate(self._frames, axis=0), reward, terminated, truncated, info
