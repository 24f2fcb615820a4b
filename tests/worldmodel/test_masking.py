"""Masks (exact counts, tubes), patch round trips, pixel masking."""

import pytest
import torch

from worldmodel.masking import (
    apply_pixel_mask,
    frame_mask,
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
