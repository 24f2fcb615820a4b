"""Device resolution, autocast, gradient scaler and the non-finite loss check."""

import pytest
import torch

from worldmodel.precision import (
    NonFiniteLossError,
    autocast,
    check_finite,
    make_scaler,
    resolve_device,
)

CPU = torch.device("cpu")


def test_auto_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU
    assert resolve_device("cpu") == CPU


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_names_the_fix(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device=cpu"):
        resolve_device(name)


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("tpu")


def test_bf16_autocast_on_cpu_computes_matmul_in_bf16():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast(CPU, "bf16"):
        assert (a @ b).dtype == torch.bfloat16


def test_fp32_autocast_is_a_no_op():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast(CPU, "fp32"):
        assert (a @ b).dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="use bf16 on CPU"):
        autocast(CPU, "fp16")
    with pytest.raises(ValueError, match="use bf16 on CPU"):
        make_scaler(CPU, "fp16")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        autocast(CPU, "fp8")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_scaler_is_a_pass_through_on_cpu(precision):
    scaler = make_scaler(CPU, precision)
    assert not scaler.is_enabled()
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    loss = (weight * 2).sum()
    assert scaler.scale(loss) is loss
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    assert torch.allclose(weight.detach(), torch.full((3,), 0.8))


def test_check_finite_passes_finite_losses():
    check_finite(torch.tensor(1.5), step=3, terms={"a": torch.tensor(1.0), "b": torch.tensor(0.5)})
    check_finite(torch.tensor(1.5), step=3)


def test_check_finite_names_step_and_bad_terms():
    terms = {"recon": torch.tensor(1.0), "latent": torch.tensor(float("nan")), "reward": torch.tensor(float("inf"))}
    with pytest.raises(NonFiniteLossError, match="update 1234") as info:
        check_finite(torch.tensor(float("nan")), step=1234, terms=terms)
    message = str(info.value)
    assert "latent" in message and "reward" in message and "recon" not in message


def test_check_finite_catches_a_non_finite_term_under_a_finite_total():
    with pytest.raises(NonFiniteLossError, match="update 7.*latent"):
        check_finite(torch.tensor(1.0), step=7, terms={"latent": torch.tensor([1.0, float("nan")])})


def test_replay_device_choice():
    from worldmodel.precision import replay_device

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 1)
    assert replay_device("auto", cpu, 10**9) == cpu  # training on the CPU: nothing to decide
    assert replay_device("auto", gpu, 10**9, free_bytes=4 * 10**9) == gpu  # fits in half the free memory
    assert replay_device("auto", gpu, 3 * 10**9, free_bytes=4 * 10**9) == cpu  # does not: pinned CPU memory
    assert replay_device("auto", gpu, 10, on_disk=True, free_bytes=10**9) == cpu  # memory-mapped: on disk
    assert replay_device("cpu", gpu, 10, free_bytes=10**9) == cpu


def test_auto_precision_is_bf16_on_cuda_and_fp32_elsewhere():
    from worldmodel.precision import resolve_precision

    assert resolve_precision(torch.device("cuda"), "auto") == "bf16"
    assert resolve_precision(torch.device("cpu"), "auto") == "fp32"
    assert resolve_precision(torch.device("cpu"), "bf16") == "bf16"
    with pytest.raises(ValueError, match="fp16 is not supported on CPU"):
        resolve_precision(torch.device("cpu"), "fp16")
