"""Linear probe: how much of the environment's true state a frozen latent holds.

Ridge regression from latents to `info["state"]`, fitted on some episodes and scored (R²) on
held-out ones. R² near 1: the state is linearly readable from the latents; 0: no better than
predicting the mean; negative: worse. Reported as `probe/r2` (mean over state dimensions).

R² = 1 - MSE(test) / Var(state), with the variance of each state dimension taken over *all* probe
episodes rather than the held-out ones alone: a held-out episode in which a dimension barely
moves (a pendulum swinging gently at the bottom) would otherwise divide by almost zero and make
the score swing by whole units between seeds.

`cross_validated_probe` (what training, pretraining and bench_probe.py log) scores every episode
once: the episodes are cut into `folds` groups, each group is predicted by a ridge fitted on the
others, and R² comes from the pooled out-of-fold errors. One fixed 3/4 : 1/4 split scores a
quarter of the episodes, and which quarter decides the figure: on one encoder and 8 cartpole
episodes, eight different splits gave R² from 0.11 to 0.51, the 4-fold figure 0.19 to 0.28 (16
episodes: 0.14 to 0.37 against 0.26 to 0.28). `linear_probe` (one split) remains for scoring
held-out frames under a perturbation against a probe fitted on clean ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict

from worldmodel.history import pad_history


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
    pred = _ridge_predict(train_x, train_y, test_x, alpha)
    mse = (test_y - pred).square().mean(0)
    variance = torch.cat([train_y, test_y]).var(0, correction=0).clamp_min(1e-12)
    per_dim = (1.0 - mse / variance).tolist()
    return ProbeResult(r2=float(sum(per_dim) / len(per_dim)), r2_per_dim=per_dim)


def cross_validated_r2(xs: list[torch.Tensor], ys: list[torch.Tensor], folds: int = 4,
                       alpha: float = 1e-2) -> ProbeResult:
    """R² of ridge probes scored out of fold: episode i goes to fold `i % folds`, each fold is
    predicted by a probe fitted on all the others, and each dimension's R² is 1 - (mean squared
    out-of-fold error over every step) / (its variance over every step).

    Args:
        xs: per episode `(L_i, D)` float latents; ys: per episode `(L_i, S)` float states; at least 2.
        folds: groups (at most one per episode).
        alpha: ridge penalty on standardised features, as in `ridge_r2`.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"cross-validation needs at least 2 episodes with a state each, got {len(xs)} and {len(ys)}.")
    k = min(folds, len(xs))
    squared = torch.zeros(ys[0].shape[-1], dtype=torch.float64)
    for f in range(k):
        held = [i % k == f for i in range(len(xs))]
        train_x = torch.cat([x for x, h in zip(xs, held) if not h]).double()
        train_y = torch.cat([y for y, h in zip(ys, held) if not h]).double()
        test_x = torch.cat([x for x, h in zip(xs, held) if h]).double()
        test_y = torch.cat([y for y, h in zip(ys, held) if h]).double()
        squared += (test_y - _ridge_predict(train_x, train_y, test_x, alpha)).square().sum(0)
    every = torch.cat(ys).double()
    variance = every.var(0, correction=0).clamp_min(1e-12)
    per_dim = (1.0 - squared / len(every) / variance).tolist()
    return ProbeResult(r2=float(sum(per_dim) / len(per_dim)), r2_per_dim=per_dim)


def _ridge_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Predictions `(M, S)` for test_x `(M, D)` of a ridge fitted on train_x `(N, D)`, train_y `(N, S)`,
    features standardised on the training set."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    y_mean = train_y.mean(0)
    gram = xs.T @ xs + alpha * len(xs) * torch.eye(xs.shape[1], dtype=xs.dtype)
    return xt @ torch.linalg.solve(gram, xs.T @ (train_y - y_mean)) + y_mean


@torch.no_grad()
def episode_latents(encode_sequence, frames: torch.Tensor, history: int, device: torch.device) -> torch.Tensor:
    """Latents of every step of one episode, as an agent sees them (history padded at the start).

    Args:
        encode_sequence: `(B, S, 3, H, W) uint8 -> (B, S - k + 1, D)`, e.g. `WorldModel.encode_sequence`.
        frames: `(L, 3, H, W)` uint8.
    Returns:
        `(L, D)` float32.
    """
    padded = pad_history(frames, history)
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


def cross_validated_probe(encode_sequence, episodes: list[TensorDict], history: int, device: torch.device,
                          folds: int = 4) -> ProbeResult:
    """`cross_validated_r2` of the latents of `episodes` (each with `obs (L, 3, H, W) uint8` and
    `state (L, S) float`; at least 2) against their states."""
    xs = [episode_latents(encode_sequence, ep["obs"], history, device) for ep in episodes]
    return cross_validated_r2(xs, [ep["state"].float() for ep in episodes], folds)
