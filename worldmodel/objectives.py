"""Loss functions as pure functions of tensors, and the one place that weighs them into a total.

Numerically touchy parts (log-sum-exp, cosine normalisation, squared sums) run in fp32 whatever
the autocast precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): compresses large rewards/values so one MSE fits every scale."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


def info_nce(queries: torch.Tensor, keys: torch.Tensor, positives: torch.Tensor,
             temperature: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE: each query must pick its positive key among all keys.

    Args:
        queries: `(N, P)` predicted embeddings (e.g. projected imagined latents z^_{t+k}).
        keys: `(M, P)` target embeddings; every key that is not a query's positive is a negative
            (other sequences and other time steps of the batch).
        positives: `(N,)` int64, index into `keys` of each query's positive.
        temperature: scalar > 0.

    Returns:
        loss `()` (cross-entropy over cosine-similarity logits, in fp32) and top-1 accuracy `()`.
    """
    q = F.normalize(queries.float(), dim=-1)
    k = F.normalize(keys.float(), dim=-1)
    logits = q @ k.T / torch.as_tensor(temperature, dtype=torch.float32, device=q.device)
    loss = F.cross_entropy(logits, positives)
    accuracy = (logits.argmax(dim=-1) == positives).float().mean()
    return loss, accuracy.detach()


def cosine_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """`1 - cos(pred, target)` per item `(..., D)`, averaged with optional weights `(...)` (MLR's loss)."""
    per_item = 1.0 - F.cosine_similarity(pred.float(), target.float(), dim=-1)
    if weight is None:
        return per_item.mean()
    weight = weight.float()
    return (per_item * weight).sum() / weight.sum().clamp_min(1e-6)


def latent_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between latents, in fp32."""
    return (pred.float() - target.float()).square().mean()


def lambda_returns(rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, discount: float,
                   lam: float) -> torch.Tensor:
    """TD(lambda) targets along sequences, computed backwards.

    G_t = r_{t+1} + gamma * (1 - terminated_{t+1}) * ((1 - lambda) * V(s_{t+1}) + lambda * G_{t+1}),
    with G at the last step bootstrapped from V alone. Only termination stops bootstrapping: a
    sequence cut by a time limit (truncated) still has a value after its last state.

    Args:
        rewards: `(B, T)` reward received on arriving at step t+1, i.e. `batch["reward"][:, 1:]`.
        next_values: `(B, T)` V(s_{t+1}).
        terminated: `(B, T)` whether s_{t+1} is terminal.
    Returns:
        `(B, T)` targets for V(s_t).
    """
    not_done = 1.0 - terminated.float()
    targets = torch.empty_like(rewards)
    following = next_values[:, -1]
    for t in range(rewards.shape[1] - 1, -1, -1):
        mix = next_values[:, t] if t == rewards.shape[1] - 1 else (1 - lam) * next_values[:, t] + lam * following
        targets[:, t] = rewards[:, t] + discount * not_done[:, t] * mix
        following = targets[:, t]
    return targets


def weigh(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Total loss = sum of weight * term. A term without a weight, or a weight without a term, is
    an error: a loss that silently drops out of the total is the worst kind of bug."""
    if set(terms) != set(weights):
        missing, extra = set(weights) - set(terms), set(terms) - set(weights)
        raise KeyError(f"loss terms and weights differ: terms missing {sorted(missing)}, unweighted {sorted(extra)}")
    return sum(weights[name] * value for name, value in terms.items())
