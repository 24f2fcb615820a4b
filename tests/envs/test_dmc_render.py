"""DmcRender: DeepMind Control frames through one persistent camera and a smaller shadow map must be
the suite's own frames (to a few shadow-edge pixels), and must follow a physics reload (DmcColors).

Run in a subprocess, as the other dm_control checks: one GL suite per process."""

import subprocess
import sys

import pytest

from envs.wrappers import SHADOW_MAP

CHECK = """
import numpy as np, gymnasium as gym, envs
from envs.wrappers import DmcRender

def stack(env):
    names = []
    while hasattr(env, "env"):
        names.append(type(env).__name__); env = env.env
    return names

# 1. the same state rendered by the suite's own renderer (a separate physics, its 2048 shadow map)
env = envs.make_env("dm_control/walker-walk-v0", image_size=64, seed=0)
assert "DmcRender" in stack(env), stack(env)
ref = gym.make("dm_control/walker-walk-v0", render_mode="rgb_array",
               render_kwargs={"width": 64, "height": 64, "camera_id": 0})
ref.reset(seed=0)
physics, ref_physics = env.unwrapped._env.physics, ref.unwrapped._env.physics
rng = np.random.default_rng(0)
diffs, frames = [], []
for _ in range(12):
    obs, *_ = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    ref_physics.set_state(physics.get_state()); ref_physics.forward()
    want = ref.render().transpose(2, 0, 1).astype(np.int64)
    diffs.append(np.abs(obs.astype(np.int64) - want).mean()); frames.append(obs)
print("shadow_map_diff", max(diffs))
print("shadow_size", physics.contexts.mujoco.ptr.shadowSize)
print("frames_move", np.abs(np.diff(np.stack(frames).astype(np.int64), axis=0)).mean())
first = env.render(); env.step(np.zeros(6, np.float32))
print("copies", int(not np.shares_memory(first, env.render())))
env.close(); ref.close()

# 2. recoloured at every reset (the physics is reloaded): the persistent camera must show the new colours
env = envs.make_env("dm_control/cartpole-swingup-v0", image_size=48, perturb="color_all_hard")
seen = []
for seed in (3, 4):
    obs, _ = env.reset(seed=seed)
    shimmy_frame = env.unwrapped.render().transpose(2, 0, 1)  # a fresh dm_control camera on the same physics
    print("reload_equal", int(np.array_equal(obs, shimmy_frame)))
    print("shadow_size", env.unwrapped._env.physics.contexts.mujoco.ptr.shadowSize)
    seen.append(obs.astype(np.int64))
print("reload_changes", np.abs(seen[0] - seen[1]).mean())
env.close()

# 3. something rendered through the suite first (its GL context made at 2048): the cap still applies
env = envs.make_env("dm_control/cartpole-swingup-v0", image_size=48)
env.unwrapped.render()
env.reset(seed=0)
print("shadow_size", env.unwrapped._env.physics.contexts.mujoco.ptr.shadowSize)
env.close()

# 4. suite_render=True: shimmy's own renderer, the model's own shadow map
env = envs.make_env("dm_control/cartpole-swingup-v0", image_size=48, seed=0, suite_render=True)
print("suite_stack", int("DmcRender" not in stack(env)))
print("suite_shadow_size", env.unwrapped._env.physics.contexts.mujoco.ptr.shadowSize)
env.close()
"""


def test_dmc_frames_match_the_suites_renderer_and_follow_reloads():
    pytest.importorskip("shimmy")
    pytest.importorskip("dm_control")
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, list[float]] = {}
    for line in proc.stdout.splitlines():
        key, value = line.split()
        out.setdefault(key, []).append(float(value))
    # mean absolute pixel difference (0..255) from the suite's own frames of the same state: shadow edges only
    assert out["shadow_map_diff"][0] < 0.1
    assert out["frames_move"][0] > 0.5  # the states compared were not all the same frame
    assert out["copies"] == [1.0]  # a held frame is not overwritten by the next render
    assert out["reload_equal"] == [1.0, 1.0]
    assert out["shadow_size"] == [SHADOW_MAP] * 4  # walker; each recoloured reload; after the suite rendered first
    assert out["suite_stack"] == [1.0] and out["suite_shadow_size"][0] > SHADOW_MAP  # suite_render=True
    assert out["reload_changes"][0] > 20  # two colour draws, both rendered
