"""The optional suites, when their extra is installed (CI installs all three: `.ci/run`).

One GL-based suite per process in real use: gymnasium's MuJoCo renderer and dm_control each make
their own GL context, and mixing both in one process can garble dm_control's frames. Vector envs
run each env in its own worker process, so training is unaffected.
"""

import subprocess
import sys

import pytest

CASES = [
    ("HalfCheetah-v5", "mujoco", "Box", 17),
    ("dm_control/cartpole-swingup-v0", "shimmy", "Box", 5),
    ("ALE/Pong-v5", "ale_py", "Discrete", None),
]

CHECK = """
import sys, numpy as np, envs
env = envs.make_env(sys.argv[1], image_size=48, frame_stack=2, action_repeat=2, seed=0)
obs, info = env.reset(seed=0)
assert obs.shape == (6, 48, 48) and obs.dtype == np.uint8, obs.shape
for _ in range(5):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
assert obs[-3:].std() > 5, "a blank frame"
print(type(env.action_space).__name__, info["state"].shape[0] if "state" in info else None)
"""


@pytest.mark.parametrize("env_id,module,space,state_dim", CASES)
def test_extra_suite_makes_pixel_envs(env_id, module, space, state_dim):
    pytest.importorskip(module)
    # Numerical warnings are errors here: DeepMind Control's float64 action bounds once made every run
    # print gymnasium's "overflow encountered in cast" (bounds rescaled in float32).
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", CHECK, env_id],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    kind, state = proc.stdout.split()[-2:]
    assert kind == space
    assert state == str(state_dim)
