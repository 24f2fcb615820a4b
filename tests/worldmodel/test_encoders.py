"""Encoders and decoder: shapes, gradients, masking, and bf16 autocast on CPU."""

import pytest
import torch
from einops import rearrange

from worldmodel.decoders import ConvDecoder
from worldmodel.encoders import ConvEncoder, PatchEncoder, preprocess
from worldmodel.masking import tube_mask
from worldmodel.precision import autocast

CPU = torch.device("cpu")
LATENT = 32


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    pixels = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return preprocess(pixels)


def small_encoders(size: int) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [
        ConvEncoder(3, size, LATENT, channels=8),
        PatchEncoder(3, size, patch=8, latent_dim=LATENT, width=32, depth=1, heads=2),
    ]


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx.detach().float() - exact.detach()).norm() / exact.detach().norm())


def test_preprocess_range_and_dtype():
    out = preprocess(torch.tensor([0, 255], dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.tolist() == [-0.5, 0.5]
    with pytest.raises(ValueError, match="uint8"):
        preprocess(torch.zeros(2))


@pytest.mark.parametrize("size", [64, 32])
def test_encoders_output_shape_and_gradients(size):
    for encoder in small_encoders(size):
        x = images(3, size).requires_grad_()
        z = encoder(x)
        assert z.shape == (3, LATENT) and encoder.latent_dim == LATENT
        z.square().sum().backward()
        assert x.grad.abs().sum() > 0
        assert all(p.grad is not None for p in encoder.parameters() if p is not getattr(encoder, "mask_token", None))


@pytest.mark.parametrize("size", [64, 32])
def test_decoder_output_shape_and_gradients(size):
    torch.manual_seed(0)
    decoder = ConvDecoder(LATENT, 3, size, channels=8)
    z = torch.randn(3, LATENT, requires_grad=True)
    out = decoder(z)
    assert out.shape == (3, 3, size, size) and out.dtype == torch.float32
    out.square().mean().backward()
    assert z.grad.abs().sum() > 0 and all(p.grad is not None for p in decoder.parameters())


def test_encode_decode_a_sequence_folded_into_the_batch():
    encoder, decoder = ConvEncoder(3, 32, LATENT, channels=8), ConvDecoder(LATENT, 3, 32, channels=8)
    frames = rearrange(images(6, 32), "(b t) c h w -> b t c h w", b=2)
    z = encoder(rearrange(frames, "b t c h w -> (b t) c h w"))
    recon = rearrange(decoder(z), "(b t) c h w -> b t c h w", b=2)
    assert recon.shape == frames.shape


def test_patch_encoder_mask_changes_the_output_and_trains_the_mask_token():
    _, encoder = small_encoders(32)
    assert encoder.grid == 4
    x = images(2, 32)
    mask = tube_mask(2, 1, grid=encoder.grid, ratio=0.5, tube=1, generator=torch.Generator().manual_seed(0))[:, 0]
    masked = encoder(x, mask)
    assert not torch.allclose(masked, encoder(x), atol=1e-4)
    assert torch.allclose(encoder(x, torch.zeros_like(mask)), encoder(x), atol=1e-6)
    masked.square().sum().backward()
    assert encoder.mask_token.grad.abs().sum() > 0


def test_patch_encoder_refuses_a_misshapen_mask():
    _, encoder = small_encoders(32)
    with pytest.raises(ValueError, match="patch_mask"):
        encoder(images(2, 32), torch.zeros(2, 5, dtype=torch.bool))


def test_encoders_refuse_wrong_inputs():
    encoder = ConvEncoder(3, 32, LATENT, channels=8)
    with pytest.raises(ValueError, match="fold time"):
        encoder(torch.zeros(2, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="preprocess"):
        encoder(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiple of"):
        ConvEncoder(3, 40, LATENT, depth=4)


@pytest.mark.parametrize("size", [64, 32])
def test_bf16_autocast_forward_is_finite_and_close_to_fp32(size):
    x = images(4, size)
    torch.manual_seed(0)
    decoder = ConvDecoder(LATENT, 3, size, channels=8)
    for encoder in small_encoders(size):
        exact = encoder(x)
        with autocast(CPU, "bf16"):
            approx = encoder(x)
        assert torch.isfinite(approx).all()
        assert relative_error(approx, exact) < 5e-2
    z = torch.randn(4, LATENT)
    exact = decoder(z)
    with autocast(CPU, "bf16"):
        approx = decoder(z)
    assert approx.dtype == torch.bfloat16 and torch.isfinite(approx).all()
    assert relative_error(approx, exact) < 5e-2


@pytest.mark.parametrize("stem, padding", [(4, 0), (3, 1)])
def test_a_difference_stem_is_a_conv_on_the_newest_frame_and_its_differences(stem, padding):
    from worldmodel.encoders import StackStem

    torch.manual_seed(0)
    conv = StackStem(9, 8, stem, frames=3, differences=True, stride=2, padding=padding)
    x = torch.randn(2, 9, 16, 16)  # three frames of 3 channels, oldest first
    oldest, older, newest = x[:, :3], x[:, 3:6], x[:, 6:]
    in_difference_space = torch.cat([newest - oldest, newest - older, newest], dim=1)
    expected = torch.nn.functional.conv2d(in_difference_space, conv.weight, conv.bias, stride=2, padding=padding)
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)
    plain = StackStem(9, 8, stem, frames=3, stride=2, padding=padding)
    assert plain.frame_weight is plain.weight  # without differences: a plain nn.Conv2d
    with pytest.raises(ValueError, match="stacked frames"):
        StackStem(8, 8, stem, frames=3)


@pytest.mark.parametrize("kind", ["conv", "patch"])
def test_a_difference_stem_trains_its_motion_weights_and_encodes_sequences_as_stacks(kind):
    from worldmodel.encoders import stacked_conv

    torch.manual_seed(0)
    encoder = (ConvEncoder(9, 32, LATENT, channels=8, depth=2, stem=4, frames=3, differences=True) if kind == "conv"
               else PatchEncoder(9, 32, patch=8, latent_dim=LATENT, width=32, depth=1, heads=2, frames=3,
                                 differences=True))
    stem = encoder.convs[0] if kind == "conv" else encoder.embed
    frames = preprocess(torch.randint(0, 256, (2, 5, 3, 32, 32), dtype=torch.uint8))
    stacks = torch.cat([frames[:, t:t + 3].flatten(1, 2) for t in range(3)])  # windows, (b t) order below
    by_stack = stem(stacks)
    by_sequence = stacked_conv(stem, frames, 9)
    order = rearrange(torch.arange(6), "(t b) -> (b t)", b=2)
    torch.testing.assert_close(by_sequence, by_stack[order], atol=1e-4, rtol=1e-4)
    encoder(stacks).square().sum().backward()
    motion = stem.weight.grad.unflatten(1, (3, 3))[:, :2]
    assert motion.abs().sum() > 0  # the difference weights learn


@pytest.mark.parametrize("act, module", [("relu", torch.nn.ReLU), ("silu", torch.nn.SiLU)])
def test_conv_encoder_activation_is_chosen_and_a_wrong_one_refused(act, module):
    encoder = ConvEncoder(9, 32, 16, channels=8, depth=2, stem=2, frames=3, act=act)
    kinds = {type(m) for m in encoder.convs if not isinstance(m, torch.nn.Conv2d)}
    assert kinds == {module}
    frames = torch.rand(2, 5, 3, 32, 32) - 0.5
    windows = rearrange(torch.stack([frames[:, t:t + 3] for t in range(3)], 1), "b t k c h w -> (b t) (k c) h w")
    torch.testing.assert_close(encoder.forward_sequence(frames), encoder(windows))
    with pytest.raises(ValueError, match="act='gelu'"):
        ConvEncoder(9, 32, 16, channels=8, depth=2, stem=2, frames=3, act="gelu")


def test_encoders_saved_before_enc_act_read_as_silu():
    from worldmodel.model import encoder_config_of

    assert encoder_config_of({"encoder": "conv"})["enc_act"] == "silu"
    assert encoder_config_of({"encoder": "conv", "enc_act": "relu"})["enc_act"] == "relu"


@pytest.mark.parametrize("preset, module", [("dmc", torch.nn.ReLU), ("cpu", torch.nn.SiLU), ("debug", torch.nn.SiLU)])
def test_the_dmc_preset_builds_a_relu_encoder_and_the_classic_presets_keep_silu(preset, module):
    """The `dmc` preset switched to ReLU on 2026-12-07 (its earlier pieces are `dmc+enc_act=silu`); the
    classic-control presets keep the SiLU their tables were measured with."""
    from worldmodel.config import Config
    from worldmodel.model import _make_encoder

    cfg = Config.from_preset(preset)
    encoder = _make_encoder(cfg)
    assert {type(m) for m in encoder.convs if not isinstance(m, torch.nn.Conv2d)} == {module}
