"""Deterministic action-conditioned latent dynamics (TD-MPC2-like).

Why deterministic rather than a recurrent stochastic state (RSSM): a planner evaluates hundreds of
candidate action sequences per step, and a plain MLP step is the cheapest thing that can be
batched over all of them; on 2 CPU cores planning latency is the budget that matters. History
that one frame cannot show (velocities) comes from stacking `history` frames at the encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.layers import mlp


class LatentDynamics(nn.Module):
    """`(z_{t+1}, outcome_t) = f(z_t, a_t)`: the next latent (normed as the encoder's, on its scale) and
    the step's `outcome_dim` outcome logits, from one shared MLP: by default `(symlog reward, termination
    logit)`; the world model decides the layout (`WorldModel._outcome`).

    One network for both, as MuZero's dynamics function: the planner needs the next latent and the
    reward of every imagined step, and one MLP call instead of two halves its cost per action.

    Shapes:
        transition: z `(..., D)`, a `(..., A)` float (continuous in [-1, 1] or one-hot)
            -> next latent `(..., D)`, outcome logits `(..., outcome_dim)`.
        forward: the next latent only.
        imagine: z0 `(B, D)`, actions `(B, H, A)` -> latents `(B, H, D)` (z_1 .. z_H, open loop).
    """

    def __init__(self, latent_dim: int, action_dim: int, hidden: int, norm: nn.Module | None = None,
                 outcome_dim: int = 2):
        super().__init__()
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.net = mlp(latent_dim + action_dim, hidden, latent_dim + outcome_dim, layers=2)
        self.norm = nn.LayerNorm(latent_dim) if norm is None else norm  # the encoder's kind of norm

    def transition(self, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([z, a.to(z.dtype)], dim=-1))
        return self.norm(out[..., :self.latent_dim]), out[..., self.latent_dim:]

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.transition(z, a)[0]

    def imagine(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if z0.ndim != 2 or actions.ndim != 3 or actions.shape[0] != z0.shape[0] or actions.shape[2] != self.action_dim:
            raise ValueError(
                f"imagine expects z0 (B, {self.latent_dim}) and actions (B, H, {self.action_dim}); "
                f"got {tuple(z0.shape)} and {tuple(actions.shape)}."
            )
        latents, z = [], z0
        for h in range(actions.shape[1]):
            z = self(z, actions[:, h])
            latents.append(z)
        return torch.stack(latents, dim=1)
