"""Small building blocks shared by the encoders, the dynamics and the heads: the MLP, and the norm
that puts every latent on one scale (LayerNorm, or TD-MPC2's simplicial SimNorm)."""

from __future__ import annotations

import torch
from torch import nn


class SimNorm(nn.Module):
    """Simplicial normalisation (TD-MPC2): the latent `(..., D)` cut into D / `group` groups, each a
    softmax, so every group lies on a simplex. Latents stay bounded and sparse-ish whatever the
    inputs, which TD-MPC2 finds keeps its dynamics and value stable. No parameters.

    Shapes: `(..., D)` -> `(..., D)`, D a multiple of `group`.
    """

    def __init__(self, group: int = 8):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return torch.softmax(x.reshape(*shape[:-1], -1, self.group), dim=-1).reshape(shape)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def latent_norm(kind: str, dim: int, group: int = 8) -> nn.Module:
    """The norm that ends every latent-valued network: `layer` (LayerNorm of `dim`) or `simnorm`."""
    if kind == "simnorm":
        return SimNorm(group)
    if kind == "layer":
        return nn.LayerNorm(dim)
    raise ValueError(f"latent_norm={kind!r}: choose layer or simnorm.")


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, out_norm: bool | nn.Module = False) -> nn.Sequential:
    """`layers` hidden Linear -> LayerNorm -> SiLU blocks, then a Linear to `out_dim`.

    LayerNorm before each activation (as TD-MPC2) keeps the MLPs stable in bf16 and under large
    learning rates. SiLU rather than TD-MPC2's Mish: on the CPU build measured here Mish runs ~10x
    slower than SiLU (525 vs 50 us on 256x256), and the planner calls these MLPs thousands of
    times per action. `out_norm` adds a LayerNorm on the output (for latent-valued outputs), or the
    module given (e.g. `SimNorm`).
    """
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    if isinstance(out_norm, nn.Module):
        blocks.append(out_norm)
    elif out_norm:
        blocks.append(nn.LayerNorm(out_dim))
    return nn.Sequential(*blocks)
