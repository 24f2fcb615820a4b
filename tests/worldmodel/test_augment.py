"""Random shifts: a whole sequence moves together, views are independent, and the model uses them
only when asked."""

import torch
from batches import SIZE, batch_for  # tests/batches.py

from worldmodel.augment import random_shift, two_views
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
