"""Random shifts: a whole sequence moves together, views are independent, and the model uses them
only when asked."""

import pytest
import torch
from batches import SIZE, batch_for  # tests/batches.py

from worldmodel.augment import APPEARANCE, appearance, color_jitter, random_shift, two_views
from worldmodel.config import Config
from worldmodel.model import WorldModel


def test_each_sequence_is_shifted_as_a_whole_within_the_pad():
    torch.manual_seed(0)
    x = torch.rand(6, 4, 3, 16, 16)
    y = random_shift(x, pad=3)
    assert y.shape == x.shape
    for b in range(6):
        # Some integer shift in [-3, 3]^2 maps the sequence's interior onto the original, for every frame.
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if torch.equal(y[b, :, :, 3:13, 3:13], x[b, :, :, 3 + dy:13 + dy, 3 + dx:13 + dx])]
        assert matches, b


def test_the_shift_equals_replicate_padding_then_a_crop_bit_for_bit_in_either_layout():
    """`random_shift` never builds the padded frame; what it writes must be exactly what padding
    with the edge replicated and cropping back at the drawn offset gives."""
    import torch.nn.functional as F

    from worldmodel.encoders import channels_last_frames

    x = torch.rand(9, 3, 3, 12, 10)
    for frames in (x, channels_last_frames(x)):
        for pad in (1, 4, 5):
            seed = torch.Generator().manual_seed(pad)
            offsets = torch.randint(0, 2 * pad + 1, (9, 2), generator=torch.Generator().manual_seed(pad)).tolist()
            y = random_shift(frames, pad, seed)
            assert y.stride() == frames.stride()
            padded = F.pad(x.flatten(0, 1), (pad,) * 4, mode="replicate").unflatten(0, (9, 3))
            for b, (dy, dx) in enumerate(offsets):
                assert torch.equal(y[b], padded[b, :, :, dy:dy + 12, dx:dx + 10]), (pad, b, dy, dx)
    # Every offset, the corners included: the extreme shifts move the frame by pad both ways.
    from worldmodel.augment import _shift_into

    frame = torch.rand(2, 7, 6)
    padded = F.pad(frame[None], (3,) * 4, mode="replicate")[0]
    for sy in range(-3, 4):
        for sx in range(-3, 4):
            out = torch.empty_like(frame)
            _shift_into(out, frame, sy, sx)
            assert torch.equal(out, padded[:, 3 + sy:3 + sy + 7, 3 + sx:3 + sx + 6]), (sy, sx)


def test_pad_zero_is_the_identity_and_views_differ():
    x = torch.rand(8, 2, 3, 16, 16)
    assert random_shift(x, 0) is x
    torch.manual_seed(1)
    a, b = two_views(x, pad=4)
    assert not torch.equal(a, b)


def test_the_model_augments_only_when_asked():
    base = Config.from_preset("debug", image_size=SIZE)
    batch = batch_for(base)
    for augment, same in (("none", True), ("shift", False)):
        cfg = base.replace(augment=augment)
        torch.manual_seed(0)
        model = WorldModel(cfg, 1)
        torch.manual_seed(5)
        first, _ = model.loss(batch)
        torch.manual_seed(6)
        second, _ = model.loss(batch)
        # Without augmentation only the masked objective draws randomness; consistency never does.
        assert torch.equal(first["consistency"], second["consistency"]) is same


def test_appearance_recolours_whole_sequences_in_range_and_none_is_the_identity():
    torch.manual_seed(0)
    x = torch.rand(5, 3, 3, 16, 16) - 0.5
    assert appearance(x, "none") is x
    for kind in ("jitter", "conv", "remap"):
        y = appearance(x, kind, torch.Generator().manual_seed(3))
        assert y.shape == x.shape and y.min() >= -0.5 and y.max() <= 0.5
        assert (y - x).abs().mean() > 0.05, kind
        assert torch.equal(y, appearance(x, kind, torch.Generator().manual_seed(3)))
        # One draw per sequence: a sequence of identical frames stays identical frame to frame.
        same = x[:, :1].expand(-1, 3, -1, -1, -1)
        z = appearance(same, kind, torch.Generator().manual_seed(4))
        assert torch.allclose(z[:, 0], z[:, 2], atol=1e-6), kind
    # the hue turns about the grey axis, so a grey frame is only tinted by the channel gains
    grey = torch.full((4, 1, 3, 2, 2), 0.1)
    assert (color_jitter(grey, torch.Generator().manual_seed(0)).std(dim=2) < 0.25).all()


def test_remap_moves_distinct_colours_independently_and_keeps_nearby_ones_nearby():
    """The hard colour modes move the sky, floor and body each its own way: no one affine map of colour
    space does that (it keeps a midpoint colour at the midpoint of the two it lies between); remap does
    not keep it, while nearby colours (shading) stay close."""
    from worldmodel.augment import random_remap

    first, second = torch.tensor([0.1, 0.3, 0.9]), torch.tensor([0.9, 0.6, 0.1])
    colours = torch.stack([first, second, (first + second) / 2, first + 0.01])  # (4, 3)
    x = colours.T[None, None, :, :, None].expand(300, 1, 3, 4, 1) - 0.5  # 300 draws of a 4x1 frame
    y = random_remap(x, torch.Generator().manual_seed(0))[:, 0, :, :, 0] + 0.5  # (300, 3, 4)
    off_midpoint = (y[..., 2] - (y[..., 0] + y[..., 1]) / 2).abs().mean()
    assert off_midpoint > 0.15  # an affine map of colour would give 0
    assert (y[..., 3] - y[..., 0]).abs().mean() < 0.05  # a 0.01 step in colour stays a small step
    assert (y[..., 0].std(dim=0) > 0.2).all()  # and each colour lands all over the cube across draws
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the map is computed in fp32 under mixed precision too
        assert torch.equal(random_remap(x, torch.Generator().manual_seed(0))[:, 0, :, :, 0] + 0.5, y)


def test_appearance_share_recolours_a_random_share_of_the_sequences_and_leaves_the_rest_clean():
    torch.manual_seed(0)
    x = torch.rand(8, 2, 3, 8, 8) - 0.5

    def recoloured(y: torch.Tensor) -> list[bool]:
        return [not torch.equal(y[i], x[i]) for i in range(len(x))]

    picks = set()
    for kind in ("jitter", "conv", "remap"):
        # share=1 is exactly the augmentation of every sequence, drawing nothing more (runs stay as before)
        assert torch.equal(appearance(x, kind, torch.Generator().manual_seed(1), share=1.0),
                           APPEARANCE[kind](x, torch.Generator().manual_seed(1)))
        for seed in range(4):
            half = appearance(x, kind, torch.Generator().manual_seed(seed), share=0.5)
            assert half.shape == x.shape and sum(recoloured(half)) == 4, kind  # four recoloured, four untouched
            picks.add(tuple(recoloured(half)))
        assert sum(recoloured(appearance(x, kind, share=0.01))) == 1  # at least one sequence
    assert len(picks) > 1  # not always the same sequences
    for share in (0.0, 1.5, -0.5):
        with pytest.raises(ValueError, match="must be in"):
            appearance(x, "conv", share=share)


def test_appearance_share_trains_on_clean_and_recoloured_sequences():
    base = Config.from_preset("debug", image_size=SIZE, appearance="conv", batch_size=8)
    batch = batch_for(base)
    torch.manual_seed(0)
    model = WorldModel(base, 1)
    seen = []
    encode = model._encode_windows

    def spy_encode(x, target=False, **kw):
        if not target:
            seen.append(x)
        return encode(x, target=target, **kw)

    model._encode_windows = spy_encode
    online = {}
    for share in (1.0, 0.5, None):
        model.cfg = base.replace(appearance_share=share) if share else base.replace(appearance="none")
        torch.manual_seed(5)
        seen.clear()
        model.loss(batch)
        online[share] = seen[0]  # the online encoder's first pass: the update's online view
    b = online[1.0].shape[0]
    clean = [torch.equal(online[0.5][i], online[None][i]) for i in range(b)]
    assert sum(clean) == b // 2  # share=0.5: half the sequences are the clean view, half recoloured
    assert not any(torch.equal(online[1.0][i], online[None][i]) for i in range(b))


def test_appearance_changes_only_the_online_view():
    base = Config.from_preset("debug", image_size=SIZE, objective="both", mask_target="pixel")
    batch = batch_for(base)
    torch.manual_seed(0)
    model = WorldModel(base, 1)
    terms = {}
    for kind in ("none", "jitter"):
        model.cfg = base.replace(appearance=kind)
        torch.manual_seed(5)
        terms[kind], _ = model.loss(batch)
    # the online latents (consistency) move; the targets and the masked objective's pixels are the clean ones
    assert not torch.equal(terms["none"]["consistency"], terms["jitter"]["consistency"])
    seen = {}
    encode, masked = model._encode_windows, model._masked_loss

    def spy_encode(x, target=False, **kw):
        if target:
            seen["target"] = x
        return encode(x, target=target, **kw)

    def spy_masked(x, actions, y, pixels=None):
        seen["online"], seen["pixels"] = x, pixels
        return masked(x, actions, y, pixels)

    model._encode_windows, model._masked_loss = spy_encode, spy_masked
    views = {}
    for kind in ("none", "jitter"):
        model.cfg = base.replace(appearance=kind)
        model.loss(batch)
        views[kind] = dict(seen)
    assert torch.equal(views["none"]["target"], views["jitter"]["target"])   # target view: clean
    assert torch.equal(views["none"]["pixels"], views["jitter"]["pixels"])   # masked targets: clean
    assert torch.equal(views["jitter"]["pixels"], views["none"]["online"])
    assert not torch.equal(views["jitter"]["online"], views["none"]["online"])  # the encoder's input: recoloured
