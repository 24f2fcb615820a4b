"""Loss functions as pure functions of tensors, and the one place that weighs them into a total.

Everything `WorldModel.loss` assembles: InfoNCE (with `rollout_positives`, which pairs rollout
predictions with their keys), cosine and latent MSE, the masked losses (`patch_errors` of
`normalized_patch_targets`, averaged over hidden patches only by `masked_mean`), symlog, two-hot
classes of symlog values (`two_hot_loss`, `two_hot_mean`) and TD(lambda) returns.

Numerically touchy parts (log-sum-exp, cosine normalisation, squared sums) run in fp32 whatever
the autocast precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): compresses large rewards/values so one MSE fits every scale."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


TWO_HOT_RANGE = 10.0
"""Two-hot bins span [-TWO_HOT_RANGE, TWO_HOT_RANGE] in symlog space: rewards up to about 22,000 in size."""


def two_hot_support(bins: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The `(bins,)` fp32 bin centres, evenly spaced in symlog space on [-TWO_HOT_RANGE, TWO_HOT_RANGE]."""
    return torch.linspace(-TWO_HOT_RANGE, TWO_HOT_RANGE, bins, device=device)


def two_hot(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Symlog values `(...)` -> `(..., bins)` fp32 class targets: each value split between its two
    neighbouring bins in proportion to its closeness, so their expectation over the support is the
    value itself (clamped to the support's range)."""
    x = x.float().clamp(-TWO_HOT_RANGE, TWO_HOT_RANGE)
    position = (x + TWO_HOT_RANGE) / (2 * TWO_HOT_RANGE) * (bins - 1)  # in [0, bins - 1]
    below = position.floor().clamp(max=bins - 2)
    upper_weight = (position - below).unsqueeze(-1)
    below = below.long().unsqueeze(-1)
    target = torch.zeros(*x.shape, bins, device=x.device)
    return target.scatter(-1, below, 1.0 - upper_weight).scatter(-1, below + 1, upper_weight)


def two_hot_cross_entropy(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits `(..., bins)` against the two-hot targets of symlog values x `(...)`,
    per element: `(...)`, in fp32."""
    target = two_hot(x, logits.shape[-1])
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def two_hot_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`two_hot_cross_entropy` averaged over every element: `()`."""
    return two_hot_cross_entropy(logits, x).mean()


def two_hot_mean(logits: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Class logits `(..., bins)` -> the expected symlog value `(...)` fp32 under their softmax over
    `support`, the `(bins,)` bin centres of `two_hot_support` (made once by the caller: the planner
    reads this for every imagined step)."""
    return F.softmax(logits.float(), dim=-1) @ support


def info_nce(queries: torch.Tensor, keys: torch.Tensor, positives: torch.Tensor,
             temperature: torch.Tensor | float, excluded: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE: each query must pick its positive key among all keys.

    Args:
        queries: `(N, P)` predicted embeddings (e.g. projected imagined latents z^_{t+k}).
        keys: `(M, P)` target embeddings; every key that is not a query's positive is a negative
            (other sequences and other time steps of the batch), unless `excluded`.
        positives: `(N,)` int64, index into `keys` of each query's positive.
        temperature: scalar > 0.
        excluded: `(N, M)` bool, True where a key is neither the query's positive nor one of its
            negatives (e.g. near-duplicates of the positive); never True at the positive.

    Returns:
        loss `()` (cross-entropy over cosine-similarity logits, in fp32) and top-1 accuracy `()`.
    """
    q = F.normalize(queries.float(), dim=-1)
    k = F.normalize(keys.float(), dim=-1)
    logits = q @ k.T / torch.as_tensor(temperature, dtype=torch.float32, device=q.device)
    if excluded is not None:
        logits = logits.masked_fill(excluded, float("-inf"))
    loss = F.cross_entropy(logits, positives)
    accuracy = (logits.argmax(dim=-1) == positives).float().mean()
    return loss, accuracy.detach()


def rollout_positives(batch: int, starts: int, horizon: int, t_len: int,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Which key each open-loop rollout prediction is positive with, for `info_nce`.

    Query `(b, s, j)` is the prediction `j + 1` steps ahead from start `s` of sequence `b`, i.e. of
    step `s + j + 1`; its positive is that step's key, `b * t_len + s + j + 1` in the keys `(B, T)`
    flattened to `(B*T)` by `rearrange(keys, "b t p -> (b t) p")`.

    Args:
        batch: B sequences.
        starts: S rollout starts per sequence, `0 .. S - 1`.
        horizon: K steps per rollout.
        t_len: T steps per sequence; needs `starts + horizon <= t_len`, so that no rollout runs
            past its own sequence.
        device: where to create the indices.

    Returns:
        `(B*S*K,)` int64, ordered as `rearrange(queries, "b s k p -> (b s k) p")`.

    Example:
        >>> rollout_positives(batch=2, starts=2, horizon=2, t_len=4)
        tensor([1, 2, 2, 3, 5, 6, 6, 7])
    """
    if starts + horizon > t_len:
        raise ValueError(f"rollouts from {starts} starts of {horizon} steps run past sequences of T={t_len} steps.")
    index = torch.arange(t_len, device=device)
    positive = (torch.arange(batch, device=device)[:, None, None] * t_len
                + index[None, :starts, None] + index[None, None, :horizon] + 1)
    return rearrange(positive, "b s k -> (b s k)")


def cosine_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """`1 - cos(pred, target)` per item `(..., D)`, averaged with optional weights `(...)` (MLR's loss)."""
    per_item = 1.0 - F.cosine_similarity(pred.float(), target.float(), dim=-1)
    if weight is None:
        return per_item.mean()
    weight = weight.float()
    return (per_item * weight).sum() / weight.sum().clamp_min(1e-6)


def latent_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between latents, in fp32."""
    return (pred.float() - target.float()).square().mean()


def normalized_patch_targets(frames: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """Pixel targets with each patch normalised to zero mean and unit variance (MAE's `norm_pix_loss`),
    kept in image layout.

    Normalising per patch stops the loss being dominated by flat, bright regions and makes the
    model predict local structure. A patch is `patch x patch` pixels of every channel, as
    `worldmodel.masking.patchify` cuts it. The population variance is used, so a normalised patch has
    variance exactly 1 (up to `eps`); a flat patch becomes all zeros. The moments are pooled from
    the images (`patch_means`), never cut into patches: cutting copies, and strided reductions over
    patches are slow on CPU.

    Args:
        frames: `(..., C, H, W)` float, any scale.
        patch: patch side in pixels.
        eps: added to the variance before the square root.

    Returns:
        `(..., C, H, W)` float32 (computed in fp32 whatever the input dtype), in `frames`' memory layout.
    """
    x = frames.float()
    mean = patch_means(x, patch)
    var = (patch_means(x.square(), patch) - mean.square()).clamp_min(0.0)
    scale = torch.rsqrt(var + eps)
    return (x - _spread(mean, patch)) * _spread(scale, patch)


def patch_errors(pred: torch.Tensor, target: torch.Tensor, patch: int) -> torch.Tensor:
    """Mean squared error of each patch, from images: equal to `((patchify(pred) - patchify(target)) ** 2)
    .mean(-1)` without cutting the images into patches (which on CPU costs more than the error itself).

    Args:
        pred, target: `(..., C, H, W)` float, the same shape (best the same memory layout).
        patch: patch side in pixels.

    Returns:
        `(..., L)` float32, patches numbered as by `patchify` (row by row).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape.")
    return patch_means((pred.float() - target.float()).square(), patch).flatten(-2)


def patch_means(x: torch.Tensor, patch: int) -> torch.Tensor:
    """The mean of each `patch x patch` patch of every channel together: `(..., C, H, W)` ->
    `(..., H / patch, W / patch)`: the channel mean (a contiguous reduction in a channels-last
    layout), then an average pool."""
    if patch < 1 or x.shape[-1] % patch or x.shape[-2] % patch:
        raise ValueError(f"image size {tuple(x.shape[-2:])} must be a multiple of patch={patch}.")
    per_pixel = x.mean(dim=-3)  # (..., H, W)
    pooled = F.avg_pool2d(per_pixel.reshape(-1, 1, *per_pixel.shape[-2:]), patch)
    return pooled.reshape(*per_pixel.shape[:-2], *pooled.shape[-2:])


def _spread(per_patch: torch.Tensor, patch: int) -> torch.Tensor:
    """`(..., H / p, W / p)` -> `(..., 1, H, W)`: each patch's value at each of its pixels, to broadcast
    over the channels."""
    return per_patch.repeat_interleave(patch, dim=-1).repeat_interleave(patch, dim=-2).unsqueeze(-3)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over hidden items only.

    Each item is a vector along the last dim; the mean is over all elements of hidden items.
    Visible items contribute neither value nor gradient. Computed in fp32, since squared errors
    summed over a batch lose precision in bf16.

    Args:
        pred: `(..., D)` float, e.g. `(B, T, L, p * p * C)` patch predictions.
        target: same shape as `pred`.
        mask: `pred.shape[:-1]` bool, True = hidden (counted). Expand a frame mask first, e.g.
            `repeat(mask, 'b t -> b t l', l=L)`.

    Returns:
        `()` float32 scalar; 0 (still attached to `pred`'s graph) when nothing is hidden.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape.")
    if mask.shape != pred.shape[:-1]:
        raise ValueError(f"mask {tuple(mask.shape)} must be pred.shape[:-1] = {tuple(pred.shape[:-1])}.")
    return masked_mean((pred.float() - target.float()).square().mean(dim=-1), mask)


def masked_mean(per_item: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `per_item (...)` float over where `mask (...)` bool is True: `()`; 0 (still attached to
    the graph) when nothing is. Visible items contribute neither value nor gradient."""
    if mask.shape != per_item.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have the items' shape {tuple(per_item.shape)}.")
    # where, not multiply: a NaN or inf in a visible prediction must not leak into the loss.
    hidden = torch.where(mask, per_item, torch.zeros_like(per_item))
    return hidden.sum() / mask.sum().clamp_min(1)


def lambda_returns(rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, discount: float,
                   lam: float) -> torch.Tensor:
    """TD(lambda) targets along sequences, computed backwards.

    G_t = r_{t+1} + gamma * (1 - terminated_{t+1}) * ((1 - lambda) * V(s_{t+1}) + lambda * G_{t+1}),
    with G at the last step bootstrapped from V alone. Only termination stops bootstrapping: a
    sequence cut by a time limit (truncated) still has a value after its last state.

    Args:
        rewards: `(B, T)` reward received on arriving at step t+1, i.e. `batch["reward"][:, 1:]`.
        next_values: `(B, T)` V(s_{t+1}).
        terminated: `(B, T)` whether s_{t+1} is terminal.
    Returns:
        `(B, T)` targets for V(s_t).
    """
    not_done = 1.0 - terminated.float()
    targets = torch.empty_like(rewards)
    following = next_values[:, -1]
    for t in range(rewards.shape[1] - 1, -1, -1):
        mix = next_values[:, t] if t == rewards.shape[1] - 1 else (1 - lam) * next_values[:, t] + lam * following
        targets[:, t] = rewards[:, t] + discount * not_done[:, t] * mix
        following = targets[:, t]
    return targets


def n_step_returns(rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, discount: float,
                   steps: int) -> torch.Tensor:
    """n-step TD targets along sequences (DrQ-v2, MR.Q): n rewards, then the value after them.

    G_t = r_{t+1} + gamma (1 - terminated_{t+1}) (r_{t+2} + ... + gamma (1 - terminated_{t+n}) V(s_{t+n})),
    for every t whose n steps lie inside the sequence; a termination stops the sum where it happens.
    `steps=1` is one-step TD.

    Args:
        rewards: `(B, T)` reward received on arriving at step t+1.
        next_values: `(B, T)` V(s_{t+1}).
        terminated: `(B, T)` whether s_{t+1} is terminal.
        steps: n, at most T.
    Returns:
        `(B, T - n + 1)` targets for V(s_t), t = 0 .. T - n.
    """
    if not 1 <= steps <= rewards.shape[1]:
        raise ValueError(f"n-step targets need 1 <= steps <= T; got steps={steps}, T={rewards.shape[1]}.")
    length = rewards.shape[1] - steps + 1
    not_done = 1.0 - terminated.float()
    targets = next_values[:, steps - 1:]
    for i in range(steps - 1, -1, -1):
        targets = rewards[:, i:i + length] + discount * not_done[:, i:i + length] * targets
    return targets


def weigh(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Total loss = sum of weight * term. A term without a weight, or a weight without a term, is
    an error: a loss that silently drops out of the total is the worst kind of bug."""
    if set(terms) != set(weights):
        missing, extra = set(weights) - set(terms), set(terms) - set(weights)
        raise KeyError(f"loss terms and weights differ: terms missing {sorted(missing)}, unweighted {sorted(extra)}")
    return sum(weights[name] * value for name, value in terms.items())


def excluded_keys(negatives: str, positives: torch.Tensor, t_len: int, keys: int) -> torch.Tensor | None:
    """`(N, M)` bool for `info_nce(excluded=...)`: the keys that are not negatives of each query under
    `Config.contrastive_negatives`. With keys flattened from `(B, T)`, key m belongs to sequence
    `m // t_len`, and so does the positive of each query.

    - `batch`: None, every other key is a negative.
    - `other_sequences` (CURL-style): the query's own sequence's other steps are excluded. At small
      action repeats they look almost like the positive, so as negatives they mostly teach the model
      to tell apart frames that barely differ.
    - `same_sequence` (time-contrastive): every other sequence's steps are excluded, so a query picks
      its step among the other steps of its own sequence. Another episode's steps can be told apart by
      coarse cues (where the cart is, where the target sits); neighbouring steps of one sequence only
      by what moves from step to step, such as the pole's angle and speed.
    """
    if negatives == "batch":
        return None
    if negatives not in ("other_sequences", "same_sequence"):
        raise ValueError(f"contrastive_negatives={negatives!r}: choose batch, other_sequences or same_sequence.")
    index = torch.arange(keys, device=positives.device)
    same = (positives // t_len)[:, None] == (index // t_len)[None, :]
    if negatives == "same_sequence":
        return ~same
    return same & (index[None, :] != positives[:, None])
