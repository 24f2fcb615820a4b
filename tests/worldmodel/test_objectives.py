"""Loss functions as pure functions: rollout positives, normalised patch targets, masked MSE."""

import pytest
import torch
from einops import repeat

from worldmodel.masking import patchify
from worldmodel.objectives import (
    masked_mean,
    masked_mse,
    normalized_patch_targets,
    patch_errors,
    rollout_positives,
    two_hot,
    two_hot_loss,
    two_hot_mean,
    two_hot_support,
)


def test_rollout_positives_pair_each_prediction_with_the_step_it_predicts():
    batch, starts, horizon, t_len = 3, 4, 2, 6
    positives = rollout_positives(batch, starts, horizon, t_len)
    assert positives.shape == (batch * starts * horizon,) and positives.dtype == torch.int64
    expected = [b * t_len + s + j + 1 for b in range(batch) for s in range(starts) for j in range(horizon)]
    assert positives.tolist() == expected


def test_rollout_positives_stay_within_their_own_sequence():
    batch, t_len, horizon = 4, 7, 3
    positives = rollout_positives(batch, t_len - horizon, horizon, t_len)
    sequence = torch.arange(batch).repeat_interleave((t_len - horizon) * horizon)
    assert torch.equal(positives // t_len, sequence)
    assert (positives % t_len >= 1).all()  # step 0 is never predicted: rollouts start there
    with pytest.raises(ValueError, match="run past"):
        rollout_positives(batch, t_len - horizon + 1, horizon, t_len)


def test_rollout_positives_pick_the_matching_keys_in_info_nce_order():
    """Keys built from their own (sequence, step) index: the positive of query (b, s, j) must be key (b, s + j + 1)."""
    batch, starts, horizon, t_len = 2, 3, 2, 5
    keys = torch.arange(batch * t_len).reshape(batch, t_len)
    picked = keys.reshape(-1)[rollout_positives(batch, starts, horizon, t_len)].reshape(batch, starts, horizon)
    for b in range(batch):
        for s in range(starts):
            for j in range(horizon):
                assert picked[b, s, j] == keys[b, s + j + 1]


def test_normalized_targets_have_zero_mean_unit_variance_per_patch():
    frames = torch.rand(2, 3, 3, 16, 16) * 5.0 + 2.0
    targets = normalized_patch_targets(frames, 4)
    assert targets.shape == frames.shape and targets.dtype == torch.float32
    targets = patchify(targets, 4)  # (2, 3, 16, 48): each patch of 4 x 4 pixels of the 3 channels
    assert targets.mean(dim=-1).abs().max() < 1e-5
    assert (targets.var(dim=-1, correction=0) - 1).abs().max() < 1e-3


def test_normalized_targets_of_a_flat_patch_are_zero():
    assert torch.equal(normalized_patch_targets(torch.ones(1, 1, 3, 4, 4), 4), torch.zeros(1, 1, 3, 4, 4))


def test_patch_errors_are_the_mse_of_each_patch_as_patchify_cuts_them():
    pred, target = torch.randn(2, 3, 3, 16, 8), torch.randn(2, 3, 3, 16, 8)
    expected = (patchify(pred, 4) - patchify(target, 4)).square().mean(dim=-1)  # (2, 3, 8)
    assert torch.allclose(patch_errors(pred, target, 4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of patch=3"):
        patch_errors(pred, target, 3)


def test_masked_mean_counts_hidden_items_only_and_refuses_a_misshapen_mask():
    per_item = torch.tensor([[1.0, float("nan")], [3.0, 5.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [True, True]])
    loss = masked_mean(per_item, mask)
    assert loss.item() == 3.0
    loss.backward()
    assert per_item.grad[0, 1] == 0
    with pytest.raises(ValueError, match="must have the items' shape"):
        masked_mean(per_item, mask[0])


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


def test_other_sequence_negatives_exclude_only_the_own_sequence_s_other_steps():
    from worldmodel.objectives import excluded_keys

    positives = rollout_positives(2, 1, 2, 4)  # B=2, one start, K=2, T=4: positives 1, 2, 5, 6
    excluded = excluded_keys("other_sequences", positives, t_len=4, keys=8)
    assert excluded.shape == (4, 8)
    assert excluded[0].tolist() == [True, False, True, True, False, False, False, False]
    assert excluded[2].tolist() == [False, False, False, False, True, False, True, True]
    assert not excluded[torch.arange(4), positives].any()


def test_same_sequence_negatives_exclude_every_other_sequence_and_keep_the_positive():
    from worldmodel.objectives import excluded_keys

    positives = rollout_positives(2, 1, 2, 4)  # positives 1, 2 (sequence 0) and 5, 6 (sequence 1)
    excluded = excluded_keys("same_sequence", positives, t_len=4, keys=8)
    assert excluded[0].tolist() == [False] * 4 + [True] * 4
    assert excluded[3].tolist() == [True] * 4 + [False] * 4
    assert not excluded[torch.arange(4), positives].any()
    assert excluded_keys("batch", positives, t_len=4, keys=8) is None
    with pytest.raises(ValueError, match="contrastive_negatives='others'"):
        excluded_keys("others", positives, t_len=4, keys=8)


def test_excluded_keys_do_not_count_as_negatives():
    from worldmodel.objectives import info_nce

    queries = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])  # key 1 is a near-duplicate of the positive
    positives = torch.tensor([0])
    full, _ = info_nce(queries, keys, positives, 0.1)
    masked, _ = info_nce(queries, keys, positives, 0.1, excluded=torch.tensor([[False, True, False]]))
    assert masked < full


def test_n_step_returns_sum_n_rewards_then_bootstrap_and_stop_at_termination():
    from worldmodel.objectives import lambda_returns, n_step_returns

    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    values = torch.tensor([[10.0, 20.0, 30.0, 40.0]])  # V(s_{t+1})
    ends = torch.zeros(1, 4)
    # One step is the one-step TD target.
    torch.testing.assert_close(n_step_returns(rewards, values, ends, 0.5, 1), rewards + 0.5 * values)
    # Two steps: r_{t+1} + γ r_{t+2} + γ² V(s_{t+2}), for the three starts that have two steps.
    expected = torch.tensor([[1 + 0.5 * 2 + 0.25 * 20, 2 + 0.5 * 3 + 0.25 * 30, 3 + 0.5 * 4 + 0.25 * 40]])
    torch.testing.assert_close(n_step_returns(rewards, values, ends, 0.5, 2), expected)
    # A termination on arriving at s_2 ends the sum there: start 0 keeps r_1 + γ r_2 and no value.
    ends[0, 1] = 1.0
    torch.testing.assert_close(n_step_returns(rewards, values, ends, 0.5, 2)[0, 0], torch.tensor(1 + 0.5 * 2))
    # n = T is TD(1) over the whole sequence, from its first step.
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    d = (torch.rand(3, 5, generator=g) < 0.2).float()
    torch.testing.assert_close(n_step_returns(r, v, d, 0.9, 5), lambda_returns(r, v, d, 0.9, 1.0)[:, :1])
    with pytest.raises(ValueError, match="steps"):
        n_step_returns(r, v, d, 0.9, 6)


def test_two_hot_targets_sum_to_one_and_average_to_the_value_they_encode():
    x = torch.tensor([[-10.0, -0.31, 0.0], [0.07, 2.2, 9.99]])
    target = two_hot(x, 101)
    assert target.shape == (2, 3, 101)
    torch.testing.assert_close(target.sum(-1), torch.ones(2, 3))
    assert ((target > 0).sum(-1) <= 2).all()  # at most the two neighbouring bins
    torch.testing.assert_close(target @ two_hot_support(101), x)
    # beyond the support: clamped to its ends
    torch.testing.assert_close(two_hot(torch.tensor([-50.0, 50.0]), 5) @ two_hot_support(5), torch.tensor([-10.0, 10.0]))


def test_two_hot_logits_fitted_by_their_loss_decode_to_the_value():
    x = torch.tensor([0.0, 0.4, 1.7, -3.0])
    logits = torch.zeros(4, 41, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    first = two_hot_loss(logits, x).item()
    for _ in range(300):
        optimiser.zero_grad()
        two_hot_loss(logits, x).backward()
        optimiser.step()
    assert two_hot_loss(logits, x).item() < first
    torch.testing.assert_close(two_hot_mean(logits, two_hot_support(41)), x, atol=0.02, rtol=0)
