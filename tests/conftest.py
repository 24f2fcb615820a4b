import os

import pytest

# Headless everywhere: no display, no sound card, software GL for MuJoCo.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
# Under pytest-xdist (scripts/run.sh runs two workers on CI's two cores) the scripts the tests start
# as subprocesses get one thread each, so two workers do not fight over two cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests are tiny; more threads only add contention on the 2-core CI machine."""
    import torch

    torch.set_num_threads(1)
    yield
