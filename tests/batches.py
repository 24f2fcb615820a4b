"""Small synthetic replay batches shared by tests (tests/ is on sys.path through tests/conftest.py)."""

import numpy as np
import torch

from worldmodel.config import Config
from worldmodel.replay import SequenceReplay

SIZE = 32
"""Frame side of the synthetic batches."""


def batch_for(cfg: Config, action_dim: int = 1, discrete: bool = False, seed: int = 0):
    """A replay batch of smooth random-walk frames (not pure noise, so losses are meaningful)."""
    rng = np.random.default_rng(seed)
    rb = SequenceReplay(500, cfg.sample_len, (3, SIZE, SIZE), action_dim, state_dim=2)
    pos = np.zeros(2)
    for t in range(120):
        pos = np.clip(pos + rng.normal(0, 2, 2), 4, SIZE - 5)
        frame = np.zeros((1, 3, SIZE, SIZE), np.uint8)
        frame[0, :, int(pos[0]) - 3:int(pos[0]) + 3, int(pos[1]) - 3:int(pos[1]) + 3] = 200
        if discrete:
            action = np.eye(action_dim)[rng.integers(action_dim)][None]
        else:
            action = rng.uniform(-1, 1, (1, action_dim))
        rb.add(frame, action, rng.normal(size=1), np.zeros(1), np.zeros(1), np.array([t % 40 == 0]), pos[None])
    torch.manual_seed(seed)
    return rb.sample(cfg.batch_size)
