"""One optimisation step of the world model, with mixed precision done in one place (nanoGPT-style).

An autocast context (a no-op for fp32), a gradient scaler that is only active for fp16 on CUDA,
gradients unscaled before clipping, a non-finite loss stopping training with the step number.

What computes the loss terms is `forward`: the model itself, or a wrapper of it assigned to it
(e.g. `DistributedDataParallel(model)`). `compile()` torch.compiles whatever `forward` is, now and
after any later assignment, so the two compose in either order and the compiled module is always
the outer one (compile around DDP, as PyTorch's DDPOptimizer expects):

    trainer.forward = DistributedDataParallel(model)     # optional
    trainer.compile()                                    # cfg.compile
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from tensordict import TensorDict

from worldmodel.checkpoint import CheckpointError
from worldmodel.model import ENCODER_KEYS, WorldModel
from worldmodel.objectives import weigh
from worldmodel.precision import autocast, check_finite, make_scaler

SHAPE_KEYS = (*ENCODER_KEYS, "hidden_dim", "proj_dim", "policy_prior", "value_of", "objective",
              "mask_target")
"""Config keys that decide the world model's parameters and their shapes (the action size aside)."""


class WorldModelTrainer:
    """Owns the optimiser and scaler of a `WorldModel`; `update(batch)` is one step.

    Args:
        model: the world model (already on `device`).
        device: where batches go.
        precision: fp32 | bf16 | fp16.
        lr, grad_clip: Adam learning rate and gradient-norm clip.
        encoder_lr: a separate learning rate for the encoder (fine-tuning); 0 freezes it.
    """

    def __init__(self, model: WorldModel, device: torch.device, precision: str, lr: float, grad_clip: float,
                 encoder_lr: float | None = None):
        self.model, self.device, self.precision = model, device, precision
        self._compile: dict[str, Any] | None = None  # torch.compile's arguments, once `compile()` is called
        self._timing = False
        self.forward = model
        self.grad_clip = grad_clip
        groups = [{"params": list(model.parameters_of("rest")), "lr": lr}]
        encoder_lr = lr if encoder_lr is None else encoder_lr
        if encoder_lr > 0:
            groups.append({"params": list(model.parameters_of("encoder")), "lr": encoder_lr})
        else:
            for p in model.parameters_of("encoder"):
                p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(groups)
        self.scaler = make_scaler(device, precision)
        self.steps = 0

    @property
    def forward(self) -> Callable:
        """`forward(batch) -> (terms, metrics)`: the model, or a wrapper of it assigned here (e.g.
        `DistributedDataParallel(model)`); reads back compiled when `compile()` was called."""
        return self._run

    @forward.setter
    def forward(self, forward: Callable) -> None:
        self._forward = self._run = forward
        if self._compile is not None:
            self._run = torch.compile(forward, **self._compile)
            self._timing = True  # the next update compiles

    def compile(self, mode: str | None = None) -> None:
        """torch.compile the loss computation (`forward`; backward through it is compiled too).

        Static shapes (`dynamic=False`): every replay batch has the same shape, so the graph is
        built once. The first update after this (compile + one step) reports its wall time as
        `compile/update_seconds`. `mode`: torch.compile's (None: default; "max-autotune", ...).
        """
        self._compile = {"dynamic": False, "mode": mode}
        self.forward = self._forward

    def update(self, batch: TensorDict) -> dict[str, float]:
        """One gradient step; returns `loss/<term>`, `loss/total`, `train/grad_norm` and model metrics
        (and `compile/update_seconds` on the first step after compiling)."""
        timing, start = self._timing, time.perf_counter()
        if self.device.type == "cuda" and batch.device is not None and batch.device.type == "cpu":
            batch = batch.pin_memory()  # so the copy below runs asynchronously
        batch = batch.to(self.device, non_blocking=True)
        self.model.train()
        with autocast(self.device, self.precision):
            terms, metrics = self.forward(batch)
        total = weigh(terms, self.model.loss_weights())
        check_finite(total, self.steps, terms)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for group in self.optimizer.param_groups for p in group["params"]], self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.update_targets()
        self.steps += 1
        out = {f"loss/{name}": float(value.detach()) for name, value in terms.items()}
        out["loss/total"] = float(total.detach())
        out["train/grad_norm"] = float(grad_norm)
        out.update({f"model/{name}": float(value) for name, value in metrics.items()})
        if timing:
            out["compile/update_seconds"] = time.perf_counter() - start
            self._timing = False
        return out

    def state_dict(self) -> dict[str, Any]:
        """Model, optimiser, scaler and step, with the model's config (to say what differs on a load that
        does not fit)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "steps": self.steps, "config": self.model.cfg.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`. Weights that do not fit this model are a `CheckpointError` naming the
        first mismatching parameters (saved and expected shapes) and the config keys at fault."""
        misfit = self._misfit(state["model"], state.get("config"))
        if misfit:
            raise CheckpointError(misfit)
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as e:  # another number or size of parameter groups
            raise CheckpointError(f"the checkpoint's optimiser state does not fit this trainer (saved with another "
                                  f"encoder_mode?): {str(e).splitlines()[0][:300]}") from None
        self.scaler.load_state_dict(state["scaler"])
        self.steps = state["steps"]

    def _misfit(self, saved: dict[str, torch.Tensor], saved_config: dict[str, Any] | None,
                shown: int = 3) -> str | None:
        """Why weights `saved` do not load into this model (None when they do): the first `shown`
        parameters of another shape, missing or unexpected, and the `SHAPE_KEYS` that differ."""
        mine = self.model.state_dict()
        problems = [f"{key} saved {tuple(saved[key].shape)}, expected {tuple(value.shape)}"
                    for key, value in mine.items() if key in saved and saved[key].shape != value.shape]
        problems += [f"{key} missing" for key in mine if key not in saved]
        problems += [f"{key} unexpected" for key in saved if key not in mine]
        if not problems:
            return None
        listed = "; ".join(problems[:shown]) + (f"; and {len(problems) - shown} more" if len(problems) > shown else "")
        cfg = self.model.cfg
        differ = [key for key in SHAPE_KEYS
                  if saved_config is not None and key in saved_config and saved_config[key] != getattr(cfg, key)]
        if differ:
            cause = (f"the checkpoint was saved with {', '.join(f'{k}={saved_config[k]!r}' for k in differ)}, this "
                     f"config has {', '.join(f'{k}={getattr(cfg, k)!r}' for k in differ)}")
        else:
            cause = ("the checkpoint was saved with a different image_size/history/latent_dim/hidden_dim/encoder/... "
                     "than this config (or by another version)")
        return (f"the checkpoint's world model does not fit this one: {cause}. Parameters: {listed}. Use the config "
                "the checkpoint was trained with.")
