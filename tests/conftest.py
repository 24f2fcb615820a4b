import os

import pytest

# Headless everywhere: no display, no sound card, software GL for MuJoCo.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests are tiny; more threads only add contention on the 2-core CI machine."""
    import torch

    torch.set_num_threads(1)
    yield
