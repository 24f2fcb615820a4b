import pytest
import torch

from worldmodel.probe import cross_validated_r2, ridge_r2


def test_probe_reads_a_linear_state_and_not_noise():
    torch.manual_seed(0)
    x = torch.randn(400, 16)
    w = torch.randn(16, 3)
    y = x @ w
    good = ridge_r2(x[:300], y[:300], x[300:], y[300:])
    assert good.r2 > 0.99 and len(good.r2_per_dim) == 3
    noise = ridge_r2(torch.randn(300, 16), y[:300], torch.randn(100, 16), y[300:])
    assert noise.r2 < 0.1


def test_cross_validated_probe_scores_every_episode_out_of_fold():
    torch.manual_seed(0)
    w = torch.randn(16, 3)
    xs = [torch.randn(50, 16) for _ in range(6)]
    ys = [x @ w for x in xs]
    good = cross_validated_r2(xs, ys, folds=4)
    assert good.r2 > 0.99 and len(good.r2_per_dim) == 3
    noise = cross_validated_r2([torch.randn(50, 16) for _ in range(6)], ys, folds=4)
    assert noise.r2 < 0.1
    # by hand: fold f holds episodes f and f + 4; each is predicted by a ridge fitted on the rest,
    # and R² pools the squared errors of all 300 steps against the variance over all of them
    ys = [y + 0.5 * torch.randn_like(y) for y in ys]
    errors = torch.zeros(3, dtype=torch.float64)
    for f in range(4):
        held = [i for i in range(6) if i % 4 == f]
        rest = [i for i in range(6) if i % 4 != f]
        fitted = ridge_r2(torch.cat([xs[i] for i in rest]), torch.cat([ys[i] for i in rest]),
                          torch.cat([xs[i] for i in held]), torch.cat([ys[i] for i in held]))
        variance = torch.cat([*(ys[i] for i in rest), *(ys[i] for i in held)]).double().var(0, correction=0)
        mse = (1 - torch.tensor(fitted.r2_per_dim, dtype=torch.float64)) * variance
        errors += mse * sum(len(ys[i]) for i in held)
    expected = 1 - errors / 300 / torch.cat(ys).double().var(0, correction=0)
    assert torch.allclose(torch.tensor(cross_validated_r2(xs, ys, folds=4).r2_per_dim, dtype=torch.float64),
                          expected, atol=1e-9)
    assert cross_validated_r2(xs[:2], ys[:2], folds=4).r2_per_dim  # more folds than episodes: one per episode


def test_cross_validated_probe_needs_two_episodes():
    with pytest.raises(ValueError, match="at least 2 episodes"):
        cross_validated_r2([torch.randn(5, 4)], [torch.randn(5, 2)])
