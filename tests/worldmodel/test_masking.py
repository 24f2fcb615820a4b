"""Masks (exact counts, tubes), patch round trips, pixel masking, normalised targets, masked MSE."""

import pytest
import torch
from einops import repeat

from worldmodel.masking import (
    apply_pixel_mask,
    frame_mask,
    masked_mse,
    normalized_patch_targets,
    patchify,
    tube_mask,
    unpatchify,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_patchify_round_trip_and_layout():
    frames = torch.randn(5, 3, 16, 16)
    patches = patchify(frames, 4)
    assert patches.shape == (5, 16, 4 * 4 * 3)
    # Patch 1 is the second patch of the first row; its first element is pixel (0, 4), channel 0.
    assert patches[0, 1, 0] == frames[0, 0, 0, 4]
    assert torch.equal(unpatchify(patches, 4), frames)


def test_patchify_refuses_indivisible_images():
    with pytest.raises(ValueError, match="multiple of patch"):
        patchify(torch.zeros(1, 3, 10, 10), 4)


@pytest.mark.parametrize("ratio, hidden", [(0.0, 0), (0.5, 4), (0.75, 6), (1.0, 7)])
def test_frame_mask_hides_an_exact_count_and_never_everything(ratio, hidden):
    mask = frame_mask(64, 8, ratio, generator=seeded())
    assert mask.shape == (64, 8) and mask.dtype == torch.bool
    assert (mask.sum(dim=1) == hidden).all()


def test_frame_mask_is_random_per_sequence_and_reproducible():
    mask = frame_mask(32, 8, 0.5, generator=seeded(1))
    assert len({tuple(row.tolist()) for row in mask}) > 1
    assert torch.equal(mask, frame_mask(32, 8, 0.5, generator=seeded(1)))


def test_frame_mask_refuses_bad_ratio():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        frame_mask(2, 4, 1.5)


def test_tube_mask_exact_ratio_per_frame():
    mask = tube_mask(4, 7, grid=4, ratio=0.75, tube=2, generator=seeded())
    assert mask.shape == (4, 7, 16) and mask.dtype == torch.bool
    assert (mask.sum(dim=-1) == 12).all()


def test_tube_mask_shares_patches_within_a_tube_only():
    tube = 3
    mask = tube_mask(8, 7, grid=4, ratio=0.5, tube=tube, generator=seeded())
    for start in range(0, 7, tube):
        run = mask[:, start : start + tube]
        assert (run == run[:, :1]).all()
    assert not torch.equal(mask[:, 0], mask[:, tube])  # next tube draws new patches


def test_tube_longer_than_sequence_gives_one_mask():
    mask = tube_mask(2, 4, grid=2, ratio=0.5, tube=10, generator=seeded())
    assert mask.shape == (2, 4, 4)
    assert (mask == mask[:, :1]).all()


def test_apply_pixel_mask_zeroes_hidden_frames_only():
    frames = torch.rand(2, 3, 3, 8, 8) + 1.0  # no zeros to begin with
    mask = torch.tensor([[True, False, False], [False, False, True]])
    out = apply_pixel_mask(frames, mask, patch=4)
    assert (out[mask] == 0).all()
    assert torch.equal(out[~mask], frames[~mask])


def test_apply_pixel_mask_zeroes_hidden_patches_only():
    frames = torch.rand(2, 3, 3, 8, 8) + 1.0
    mask = tube_mask(2, 3, grid=2, ratio=0.5, tube=1, generator=seeded())
    out = patchify(apply_pixel_mask(frames, mask, patch=4), 4)
    reference = patchify(frames, 4)
    assert (out[mask] == 0).all()
    assert torch.equal(out[~mask], reference[~mask])


def test_normalized_targets_have_zero_mean_unit_variance_per_patch():
    frames = torch.rand(2, 3, 3, 16, 16) * 5.0 + 2.0
    targets = normalized_patch_targets(frames, 4)
    assert targets.shape == (2, 3, 16, 48) and targets.dtype == torch.float32
    assert targets.mean(dim=-1).abs().max() < 1e-5
    assert (targets.var(dim=-1, correction=0) - 1).abs().max() < 1e-3


def test_normalized_targets_of_a_flat_patch_are_zero():
    assert torch.equal(normalized_patch_targets(torch.ones(1, 1, 3, 4, 4), 4), torch.zeros(1, 1, 1, 48))


def test_masked_mse_ignores_visible_items():
    target = torch.randn(2, 3, 4, 5)
    pred = torch.randn(2, 3, 4, 5, requires_grad=True)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 0, 0] = True
    loss = masked_mse(pred, target, mask)
    expected = ((pred[mask] - target[mask]) ** 2).mean()
    assert torch.allclose(loss, expected)

    changed = pred.detach().clone()
    changed[~mask] = float("nan")  # even garbage in visible predictions must not matter
    assert torch.allclose(masked_mse(changed, target, mask), loss)

    loss.backward()
    assert (pred.grad[~mask] == 0).all() and (pred.grad[mask] != 0).any()


def test_masked_mse_is_zero_with_grad_when_nothing_is_hidden():
    pred = torch.randn(2, 3, 5, requires_grad=True)
    loss = masked_mse(pred, torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert (pred.grad == 0).all()


def test_masked_mse_with_an_expanded_frame_mask():
    pred, target = torch.randn(2, 3, 4, 6), torch.randn(2, 3, 4, 6)
    frames = torch.tensor([[True, False, False], [False, False, False]])
    loss = masked_mse(pred, target, repeat(frames, "b t -> b t l", l=4))
    assert torch.allclose(loss, ((pred[0, 0] - target[0, 0]) ** 2).mean())


def test_masked_mse_refuses_a_misshapen_mask():
    with pytest.raises(ValueError, match=r"pred.shape\[:-1\]"):
        masked_mse(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), torch.zeros(2, dtype=torch.bool))
