"""Device and numeric precision in one place: where tensors live and in which float type they compute.

    device = resolve_device("auto")
    scaler = make_scaler(device, "fp16")
    with autocast(device, precision):
        loss = model(batch)
    check_finite(loss, step, terms)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # before clipping, so the norm is in true units
    scaler.step(optimizer); scaler.update()

The autocast context is a no-op for fp32 and the scaler is a pass-through unless it is needed
(fp16 on CUDA), so a training loop is written once for every precision.
"""

from __future__ import annotations

import contextlib

import torch

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """Turn a device name into a `torch.device`.

    Args:
        name: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".

    Raises:
        ValueError: the name is unknown, or CUDA is asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} but CUDA is not available (torch {torch.__version__}): "
                "use device=cpu or device=auto, or install a CUDA build of torch."
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist: "
                f"use an index below {torch.cuda.device_count()}."
            )
        return device
    raise ValueError(f"Unknown device {name!r}: use auto, cpu, cuda or cuda:N.")


def replay_device(choice: str, device: torch.device, nbytes: int, on_disk: bool = False,
                  free_bytes: int | None = None) -> torch.device:
    """Where the replay's storage lives.

    Args:
        choice: "cpu", a device name, or "auto": the training device when it is a GPU and the
            buffer (`nbytes` at capacity) takes at most half of its free memory, else the CPU
            (batches then travel through pinned memory).
        device: the training device.
        on_disk: a memory-mapped replay, which always lives on the CPU.
        free_bytes: the GPU's free memory (asked from CUDA when None).
    """
    if choice != "auto":
        return resolve_device(choice)
    if on_disk or device.type != "cuda":
        return torch.device("cpu")
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= free_bytes // 2 else torch.device("cpu")


def resolve_precision(device: torch.device, precision: str) -> str:
    """The precision `precision` means on `device`: "auto" is bf16 on CUDA and fp32 elsewhere.

    Raises:
        ValueError: unknown precision, or fp16 on CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision=fp16 is not supported on CPU: use bf16 on CPU (or fp32).")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A context under which eligible ops (matmul, conv) run in the chosen precision.

    Args:
        device: where the model runs.
        precision: "fp32" (a no-op context), "bf16", "fp16" (fp16 only on CUDA) or "auto".

    Raises:
        ValueError: unknown precision, or fp16 on CPU.
    """
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_AUTOCAST_DTYPES[precision])


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA.

    fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none.
    A disabled scaler passes `scale`/`unscale_`/`step`/`update` straight through, so callers
    use it unconditionally.
    """
    precision = resolve_precision(device, precision)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops rather than corrupting the weights.

    `where` names the moment ("update 150"; the online loop re-raises it as "environment step 2400
    (update 150)", the step its logs use), `detail` what was not finite.
    """

    def __init__(self, detail: str, where: str):
        self.detail, self.where = detail, where
        super().__init__(f"Non-finite loss at {where}: {detail}")


def check_finite(loss: torch.Tensor, step: int, terms: dict[str, torch.Tensor] | None = None) -> None:
    """Stop training on a non-finite loss, naming the step and the culprit terms.

    Args:
        loss: the total loss, any shape, any float dtype.
        step: the update count, reported in the message.
        terms: the named loss terms the total was formed from (each any shape).

    Raises:
        NonFiniteLossError: `loss` or any term holds a NaN or an infinity.

    This reads the loss back to the host (a device sync), so call it once per step, not per term.
    """
    terms = terms or {}
    if bool(torch.isfinite(loss).all()) and all(bool(torch.isfinite(v).all()) for v in terms.values()):
        return
    bad = {name: value for name, value in terms.items() if not bool(torch.isfinite(value).all())}
    described = (", ".join(f"{name}={_describe(value)}" for name, value in bad.items())
                 or "none (every term is finite, so a loss weight is not)")
    raise NonFiniteLossError(
        f"loss={_describe(loss)}; non-finite terms: {described}. "
        "Lower the learning rate, clip gradients, or use fp32/bf16 instead of fp16.",
        f"update {step}",
    )


def _describe(value: torch.Tensor) -> str:
    if value.numel() == 1:
        return str(float(value.detach().float()))
    count = int((~torch.isfinite(value.detach())).sum())
    return f"{count}/{value.numel()} non-finite"

