"""Linear probe: how much of the environment's true state a frozen latent holds.

Ridge regression from latents to `info["state"]`, fitted on some episodes and scored (R²) on
held-out ones. R² near 1: the state is linearly readable from the latents; 0: no better than
predicting the mean; negative: worse. Reported as `probe/r2` (mean over state dimensions).

R² = 1 - MSE(test) / Var(state), with the variance of each state dimension taken over *all* probe
episodes rather than the held-out ones alone: a held-out episode in which a dimension barely
moves (a pendulum swinging gently at the bottom) would otherwise divide by almost zero and make
the score swing by whole units between seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict


@dataclass
class ProbeResult:
    r2: float
    """Mean R² over state dimensions (each dimension weighs the same)."""
    r2_per_dim: list[float]


def ridge_r2(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
             alpha: float = 1e-2) -> ProbeResult:
    """Fit `y ~ x W + b` by ridge regression on standardised features; R² on the test set.

    Args:
        train_x `(N, D)`, train_y `(N, S)`, test_x `(M, D)`, test_y `(M, S)`: float.
        alpha: ridge penalty on standardised features (scale-free).
    """
    train_x, train_y, test_x, test_y = (t.double() for t in (train_x, train_y, test_x, test_y))
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    y_mean = train_y.mean(0)
    gram = xs.T @ xs + alpha * len(xs) * torch.eye(xs.shape[1], dtype=xs.dtype)
    weights = torch.linalg.solve(gram, xs.T @ (train_y - y_mean))
    pred = xt @ weights + y_mean
    mse = (test_y - pred).square().mean(0)
    variance = torch.cat([train_y, test_y]).var(0, correction=0).clamp_min(1e-12)
    per_dim = (1.0 - mse / variance).tolist()
    return ProbeResult(r2=float(sum(per_dim) / len(per_dim)), r2_per_dim=per_dim)


@torch.no_grad()
def episode_latents(encode_sequence, frames: torch.Tensor, history: int, device: torch.device) -> torch.Tensor:
    """Latents of every step of one episode, as an agent sees them (history padded at the start).

    Args:
        encode_sequence: `(B, S, 3, H, W) uint8 -> (B, S - k + 1, D)`, e.g. `WorldModel.encode_sequence`.
        frames: `(L, 3, H, W)` uint8.
    Returns:
        `(L, D)` float32.
    """
    padded = torch.cat([frames[:1].expand(history - 1, -1, -1, -1), frames], dim=0)
    return encode_sequence(padded[None].to(device))[0].float().cpu()


def linear_probe(encode_sequence, fit: list[TensorDict], score: list[TensorDict], history: int,
                 device: torch.device) -> ProbeResult:
    """R² of a ridge probe fitted on the `fit` episodes and scored on the `score` episodes.

    Each episode is a TensorDict with `obs (L, 3, H, W) uint8` and `state (L, S) float`.
    """
    def features(episodes):
        xs = [episode_latents(encode_sequence, ep["obs"], history, device) for ep in episodes]
        return torch.cat(xs), torch.cat([ep["state"].float() for ep in episodes])

    train_x, train_y = features(fit)
    test_x, test_y = features(score)
    return ridge_r2(train_x, train_y, test_x, test_y)
