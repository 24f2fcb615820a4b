"""Small MLP building block shared by the dynamics and the heads."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, out_norm: bool = False) -> nn.Sequential:
    """`layers` hidden Linear -> LayerNorm -> SiLU blocks, then a Linear to `out_dim`.

    LayerNorm before each activation (as TD-MPC2) keeps the MLPs stable in bf16 and under large
    learning rates. SiLU rather than TD-MPC2's Mish: on the CPU build measured here Mish runs ~10x
    slower than SiLU (525 vs 50 us on 256x256), and the planner calls these MLPs thousands of
    times per action. `out_norm` adds a LayerNorm on the output (for latent-valued outputs).
    """
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    if out_norm:
        blocks.append(nn.LayerNorm(out_dim))
    return nn.Sequential(*blocks)
