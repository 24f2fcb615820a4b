import torch

from worldmodel.probe import ridge_r2


def test_probe_reads_a_linear_state_and_not_noise():
    torch.manual_seed(0)
    x = torch.randn(400, 16)
    w = torch.randn(16, 3)
    y = x @ w
    good = ridge_r2(x[:300], y[:300], x[300:], y[300:])
    assert good.r2 > 0.99 and len(good.r2_per_dim) == 3
    noise = ridge_r2(torch.randn(300, 16), y[:300], torch.randn(100, 16), y[300:])
    assert noise.r2 < 0.1
