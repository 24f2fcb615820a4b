import os

import numpy as np
import pytest
import torch
from batches import SIZE, batch_for  # tests/batches.py

from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.history import FrameHistory
from worldmodel.model import WorldModel
from worldmodel.objectives import info_nce, symexp, symlog, two_hot, two_hot_loss, two_hot_support, weigh
from worldmodel.precision import NonFiniteLossError, autocast
from worldmodel.trainer import WorldModelTrainer


def small_cfg(**overrides) -> Config:
    base = dict(image_size=SIZE, enc_stem=2, enc_depth=2, patch_size=8, batch_size=4, seq_len=6, model_horizon=3)
    return Config.from_preset("debug", **{**base, **overrides})


@pytest.mark.parametrize("objective", ["masked", "contrastive", "both"])
@pytest.mark.parametrize("encoder", ["conv", "patch"])
def test_loss_terms_match_declared_weights(objective, encoder):
    cfg = small_cfg(objective=objective, encoder=encoder)
    model = WorldModel(cfg, 1)
    terms, metrics = model.loss(batch_for(cfg))
    assert set(terms) == set(model.loss_weights())
    assert {"consistency", "reward", "termination"} <= set(terms)
    assert ("masked" in terms) == (objective != "contrastive")
    assert ("contrastive" in terms) == (objective != "masked")
    total = weigh(terms, model.loss_weights())
    assert torch.isfinite(total) and total.ndim == 0
    total.backward()


@pytest.mark.parametrize("mask_target,norm_pix", [("pixel", True), ("pixel", False), ("latent", True)])
@pytest.mark.parametrize("mask_type", ["frame", "tube", "both"])
def test_masked_variants_run(mask_target, norm_pix, mask_type):
    cfg = small_cfg(objective="masked", mask_target=mask_target, norm_pix=norm_pix, mask_type=mask_type)
    model = WorldModel(cfg, 1)
    terms, metrics = model.loss(batch_for(cfg))
    assert torch.isfinite(terms["masked"]) and 0 < metrics["masked_fraction"] < 1
    assert model.has_decoder == (mask_target == "pixel")


def test_weigh_refuses_missing_or_unweighted_terms():
    terms = {"a": torch.tensor(1.0), "b": torch.tensor(2.0)}
    assert weigh(terms, {"a": 1.0, "b": 0.5}) == 2.0
    with pytest.raises(KeyError, match="unweighted"):
        weigh(terms, {"a": 1.0})
    with pytest.raises(KeyError, match="missing"):
        weigh(terms, {"a": 1.0, "b": 1.0, "c": 1.0})


def test_info_nce_is_lower_for_matched_than_shuffled_pairs():
    torch.manual_seed(0)
    keys = torch.randn(64, 16)
    queries = keys + 0.1 * torch.randn(64, 16)
    positives = torch.arange(64)
    matched, accuracy = info_nce(queries, keys, positives, 0.1)
    shuffled, _ = info_nce(queries[torch.randperm(64)], keys, positives, 0.1)
    assert matched < 0.1 * shuffled and accuracy == 1.0
    with autocast(torch.device("cpu"), "bf16"):
        low, _ = info_nce(queries.bfloat16(), keys.bfloat16(), positives, 0.1)
    assert low.dtype == torch.float32  # log-sum-exp in fp32 under autocast


def test_no_gradient_reaches_the_target_encoder():
    cfg = small_cfg(objective="both")
    model = WorldModel(cfg, 1)
    before = [p.clone() for p in model._target_encoder.parameters()]
    terms, _ = model.loss(batch_for(cfg))
    weigh(terms, model.loss_weights()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model._target_encoder.parameters())
    assert all(p.grad is None for p in model._target_projector.parameters())
    assert any(p.grad is not None for p in model._encoder.parameters())
    # It moves only by the EMA step, toward the online encoder.
    online = [p.detach().clone() for p in model._encoder.parameters()]
    with torch.no_grad():
        for p in model._encoder.parameters():
            p.add_(1.0)
    model.update_targets()
    m = cfg.target_momentum
    for old, new, o in zip(before, model._target_encoder.parameters(), online):
        torch.testing.assert_close(new, m * old + (1 - m) * (o + 1.0))


def test_optimism_adds_half_the_q_heads_spread_to_the_value_in_symlog_space():
    model = WorldModel(small_cfg(value_of="policy"), 1)
    model._q = torch.nn.ModuleList([Constant(float(symlog(torch.tensor(10.0)))),
                                    Constant(float(symlog(torch.tensor(4.0))))])
    z = torch.randn(5, model.cfg.latent_dim)
    low, high = symlog(torch.tensor(4.0)), symlog(torch.tensor(10.0))
    torch.testing.assert_close(model.value(z), symexp((low + high) / 2).expand(5))
    torch.testing.assert_close(model.value(z, optimism=2.0), symexp((low + high) / 2 + 2.0 * (high - low) / 2).expand(5))
    with pytest.raises(ValueError, match="value_of=data"):
        WorldModel(small_cfg(), 1).value(z, optimism=1.0)


@pytest.mark.parametrize("discrete", [False, True])
def test_imagine_shapes(discrete):
    cfg = small_cfg()
    action_dim = 3
    model = WorldModel(cfg, ActionSpec("discrete" if discrete else "continuous", action_dim))
    obs = torch.randint(0, 255, (5, 3 * cfg.history, SIZE, SIZE), dtype=torch.uint8)
    z = model.encode(obs)
    assert z.shape == (5, cfg.latent_dim)
    if discrete:
        actions = torch.nn.functional.one_hot(torch.randint(action_dim, (5, 7)), action_dim).float()
    else:
        actions = torch.rand(5, 7, action_dim) * 2 - 1
    latents = model.imagine(z, actions)
    assert latents.shape == (5, 7, cfg.latent_dim)
    torch.testing.assert_close(latents[:, 0], model.step(z, actions[:, 0]))
    assert model.reward(latents, actions).shape == (5, 7)
    assert model.termination(latents, actions).shape == (5, 7) and model.value(latents).shape == (5, 7)
    with pytest.raises(ValueError, match="imagine expects"):
        model.imagine(z, actions[..., :1])
    with pytest.raises(ValueError, match="uint8 stacks"):
        model.encode(obs[:, :3])


def test_discrete_actions_train_and_the_kind_survives_a_save(tmp_path):
    cfg = small_cfg()
    torch.manual_seed(0)
    model = WorldModel(cfg, ActionSpec("discrete", 4))
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip)
    out = trainer.update(batch_for(cfg, action_dim=4, discrete=True))
    assert np.isfinite(out["loss/total"]) and np.isfinite(out["loss/policy"])
    model.save(tmp_path / "wm.pt")
    assert WorldModel.load(tmp_path / "wm.pt").action_spec == ActionSpec("discrete", 4)


class Constant(torch.nn.Module):
    """A head that outputs `value` everywhere: `(..., D)` -> `(..., size)`."""

    def __init__(self, value: float, size: int = 1):
        super().__init__()
        self.value, self.size = value, size

    def forward(self, x):
        return torch.full((*x.shape[:-1], self.size), self.value)


def test_value_and_policy_targets_line_up_with_the_replayed_steps():
    """The value head learns r_{t+1} + γ (1 - terminated_{t+1}) V(z_{t+1}) (λ = 0) and the policy
    prior the action taken from step t; constant heads make the losses checkable by hand."""
    cfg = small_cfg(td_lambda=0.0, discount=0.9, history=2)
    model = WorldModel(cfg, 1)
    batch = batch_for(cfg)
    batch["terminated"][:, 3] = True
    model._target_value = Constant(float(symlog(torch.tensor(10.0))))
    model._value = Constant(0.0)
    model._policy = Constant(0.0)
    terms, _ = model.loss(batch)
    k = cfg.history
    rewards, ends, actions = batch["reward"][:, k - 1:], batch["terminated"][:, k - 1:], batch["action"][:, k - 1:]
    targets = rewards[:, 1:] + 0.9 * (1 - ends[:, 1:].float()) * 10.0
    torch.testing.assert_close(terms["value"], symlog(targets).square().mean())
    torch.testing.assert_close(terms["policy"], actions[:, 1:].square().mean())


def test_value_on_imagined_latents_gets_the_target_of_the_real_step_each_stands_for():
    """With value_on_imagined, half of the value loss is on the K-step imagined latents: z^_{s+k+1}
    learns the target of real step s+k+1 (the last step, with no target, left out)."""
    cfg = small_cfg(td_lambda=0.0, discount=0.9, history=2, value_on_imagined=True)
    model = WorldModel(cfg, 1)
    batch = batch_for(cfg)
    model._target_value = Constant(float(symlog(torch.tensor(10.0))))
    model._value = Constant(0.0)
    terms, metrics = model.loss(batch)
    k, horizon = cfg.history, cfg.model_horizon
    rewards, ends = batch["reward"][:, k - 1:], batch["terminated"][:, k - 1:]
    targets = symlog(rewards[:, 1:] + 0.9 * (1 - ends[:, 1:].float()) * 10.0)  # (B, T-1): for V(z_t)
    t_len = rewards.shape[1]
    imagined = [targets[:, s + j + 1] for s in range(t_len - horizon) for j in range(horizon) if s + j + 1 < t_len - 1]
    expected = torch.stack(imagined, 1).square().mean()
    torch.testing.assert_close(metrics["value_imagined_loss"], expected)
    torch.testing.assert_close(terms["value"], (targets.square().mean() + expected) / 2)


def test_value_loss_on_imagined_latents_shapes_only_the_value_head():
    cfg = small_cfg(value_on_imagined=True)
    model = WorldModel(cfg, 1)
    terms, _ = model.loss(batch_for(cfg))
    terms["value"].backward()
    shaped = {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None}
    assert shaped == {"_value"}


@pytest.mark.parametrize("value_of", ["data", "policy"])
def test_value_grad_lets_the_value_loss_train_the_encoder_and_nothing_else_new(value_of):
    """value_grad=true: the value (or Q) loss reaches the encoder as well as its head, never the
    target networks; without it, only the head. The loss itself is the same number either way."""
    shaped, losses = {}, {}
    for value_grad in (False, True):
        cfg = small_cfg(value_of=value_of, value_grad=value_grad)
        torch.manual_seed(0)
        model = WorldModel(cfg, 1)
        terms, _ = model.loss(batch_for(cfg))
        terms["value"].backward()
        shaped[value_grad] = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
        losses[value_grad] = float(terms["value"].detach())
    head = "_q" if value_of == "policy" else "_value"
    assert shaped[False] == {head}
    assert shaped[True] == {head, "_encoder"}
    assert losses[True] == pytest.approx(losses[False])


def test_bf16_is_finite_and_close_to_fp32_on_cpu():
    cfg = small_cfg(objective="contrastive")
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    batch = batch_for(cfg)
    with torch.no_grad():  # the values are compared, not differentiated
        terms32, _ = model.loss(batch)
        with autocast(torch.device("cpu"), "bf16"):
            terms16, _ = model.loss(batch)
    for name in terms32:
        assert torch.isfinite(terms16[name])
        assert abs(float(terms16[name]) - float(terms32[name])) <= 0.05 * abs(float(terms32[name])) + 0.02, name


def test_training_reduces_the_loss():
    cfg = small_cfg(objective="both")
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", 1e-3, cfg.grad_clip)
    batch = batch_for(cfg)
    first = trainer.update(batch)["loss/total"]
    for _ in range(30):
        last = trainer.update(batch)["loss/total"]
    assert last < 0.7 * first


@pytest.mark.parametrize("reward_head,reward_bins", [("shared", 0), ("mlp", 0), ("shared", 21), ("mlp", 21)])
def test_reward_head_layouts_learn_the_replayed_rewards_and_predict_them_in_env_units(reward_head, reward_bins):
    cfg = small_cfg(reward_head=reward_head, reward_bins=reward_bins)
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    r_dim = reward_bins or 1
    assert model._dynamics.net[-1].out_features == cfg.latent_dim + 1 + (r_dim if reward_head == "shared" else 0)
    assert hasattr(model, "_reward") == (reward_head == "mlp")
    batch = batch_for(cfg)
    batch["reward"][:] = 2.0  # one reward everywhere, so the head's prediction must move to it
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", 3e-3, cfg.grad_clip)
    first = trainer.update(batch)["loss/reward"]
    for _ in range(60):
        last = trainer.update(batch)["loss/reward"]
    assert last < 0.3 * first
    with torch.no_grad():  # latents of the replayed frames, and the actions taken from them
        z = model.encode_sequence(batch["obs"])[:, 0]
    a = batch["action"][:, cfg.history]
    latent, reward, ends = model.transition(z, a)
    assert latent.shape == (cfg.batch_size, cfg.latent_dim) and reward.shape == ends.shape == (cfg.batch_size,)
    torch.testing.assert_close(model.reward(z, a), reward)
    assert (reward - 2.0).abs().max() < 0.5  # read back in env units, not symlog or logits
    if reward_head == "mlp":  # the reward comes from its own MLP, which leaves the next latent alone
        with torch.no_grad():
            model._reward[-1].bias.add_(1.0)
        assert torch.equal(model.transition(z, a)[0], latent)
        assert not torch.equal(model.transition(z, a)[1], reward)


def test_non_finite_loss_stops_with_the_step_number():
    cfg = small_cfg()
    model = WorldModel(cfg, 1)
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip)
    batch = batch_for(cfg)
    trainer.update(batch)
    batch["reward"][:] = float("nan")
    with pytest.raises(NonFiniteLossError, match="update 1"):
        trainer.update(batch)


def test_frozen_encoder_stays_bit_identical():
    cfg = small_cfg()
    model = WorldModel(cfg, 1)
    before = {k: v.clone() for k, v in model._encoder.state_dict().items()}
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip, encoder_lr=0.0)
    for _ in range(3):
        trainer.update(batch_for(cfg))
    for k, v in model._encoder.state_dict().items():
        assert torch.equal(v, before[k])


def test_save_load_round_trip_of_model_and_encoder(tmp_path):
    cfg = small_cfg(objective="both")
    model = WorldModel(cfg, 2)
    obs = torch.randint(0, 255, (3, 3 * cfg.history, SIZE, SIZE), dtype=torch.uint8)
    model.save(tmp_path / "wm.pt")
    loaded = WorldModel.load(tmp_path / "wm.pt")
    torch.testing.assert_close(loaded.encode(obs), model.encode(obs))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k

    model.save_encoder(tmp_path / "enc.pt")
    fresh = WorldModel(cfg.replace(objective="contrastive"), 4)  # other heads, same encoder
    fresh.load_encoder(tmp_path / "enc.pt")
    torch.testing.assert_close(fresh.encode(obs), model.encode(obs))

    other = WorldModel(cfg.replace(history=3), 2)
    with pytest.raises(CheckpointError, match="history: source 2 vs this model 3"):
        other.load_encoder(tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match="expected 'world_model'"):
        WorldModel.load(tmp_path / "enc.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_model_file_is_refused(tmp_path):
    torch.save({"format_version": 1, "kind": "world_model", "config": {}, "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        WorldModel.load(tmp_path / "evil.pt")


def stack_history(frames: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: sliding windows of k frames, `(B, S, C, H, W)` -> `(B, S - k + 1, k * C, H, W)`."""
    return torch.stack([frames[:, t:t + k].flatten(1, 2) for t in range(frames.shape[1] - k + 1)], dim=1)


def test_frame_history_refills_at_an_episode_start():
    history = FrameHistory(n=2, k=3)
    f0 = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    out = history.push(f0, torch.ones(2, dtype=torch.bool))
    assert out.shape == (2, 9, 2, 2)
    f1 = torch.ones(2, 3, 2, 2, dtype=torch.uint8)
    out = history.push(f1, torch.tensor([False, True]))
    assert out[0, :6].sum() == 0 and out[0, 6:].min() == 1  # env 0: [f0, f0, f1]
    assert out[1].min() == 1  # env 1 restarted: filled with its first frame


@pytest.mark.parametrize("stack_as", ["frames", "differences"])
@pytest.mark.parametrize("encoder", ["conv", "patch"])
def test_sequence_encoding_equals_encoding_the_stacks(encoder, stack_as):
    cfg = small_cfg(encoder=encoder, history=3, stack_as=stack_as)
    model = WorldModel(cfg, 1)
    frames = torch.randint(0, 255, (2, 6, 3, SIZE, SIZE), dtype=torch.uint8)
    by_sequence = model.encode_sequence(frames)
    stacks = stack_history(frames, 3)
    by_stack = torch.stack([model.encode(stacks[:, t]) for t in range(stacks.shape[1])], dim=1)
    torch.testing.assert_close(by_sequence, by_stack, atol=1e-4, rtol=1e-4)


def test_restricted_negatives_change_only_the_contrastive_term():
    cfg = Config.from_preset("debug", image_size=SIZE, objective="contrastive")
    batch = batch_for(cfg)
    losses = {}
    for negatives in ("batch", "other_sequences", "same_sequence"):
        torch.manual_seed(0)
        model = WorldModel(cfg.replace(contrastive_negatives=negatives), 1)
        losses[negatives], _ = model.loss(batch)
    for restricted in ("other_sequences", "same_sequence"):  # fewer negatives: a smaller cross-entropy
        assert losses[restricted]["contrastive"] < losses["batch"]["contrastive"]
        assert torch.equal(losses[restricted]["reward"], losses["batch"]["reward"])


def test_the_decoder_s_unpatchifying_layer_equals_its_transposed_convolution():
    from worldmodel.decoders import ConvDecoder, unpatchify_layer

    torch.manual_seed(0)
    decoder = ConvDecoder(8, 3, 16, channels=6, depth=1, stem=4)
    x = torch.randn(5, 6, 2, 2).contiguous(memory_format=torch.channels_last)
    layer = decoder.deconvs[-1]
    assert torch.allclose(unpatchify_layer(layer, x), layer(x), atol=1e-6)
    assert torch.allclose(unpatchify_layer(layer, x.contiguous()), layer(x), atol=1e-6)


def test_q_of_the_policy_targets_the_next_step_with_the_smaller_target_head():
    """value_of=policy: Q(z_t, a_{t+1}) learns r_{t+1} + γ (1 - terminated_{t+1}) min_i Q'_i(z_{t+1}, π(z_{t+1}))."""
    cfg = small_cfg(value_of="policy", discount=0.9, history=2)
    model = WorldModel(cfg, 1)
    batch = batch_for(cfg)
    batch["terminated"][:, 3] = True
    model._target_q = torch.nn.ModuleList([Constant(float(symlog(torch.tensor(10.0)))),
                                           Constant(float(symlog(torch.tensor(4.0))))])
    model._q = torch.nn.ModuleList([Constant(0.0), Constant(0.0)])
    terms, metrics = model.loss(batch)
    k = cfg.history
    rewards, ends = batch["reward"][:, k - 1:], batch["terminated"][:, k - 1:]
    targets = rewards[:, 1:] + 0.9 * (1 - ends[:, 1:].float()) * 4.0
    torch.testing.assert_close(terms["value"], symlog(targets).square().mean())
    torch.testing.assert_close(metrics["value_target_mean"], targets.mean())


class TwoHotConstant(torch.nn.Module):
    """A value head of `bins` logits that decode to the symlog value `value`, whatever its input."""

    def __init__(self, value: float, bins: int):
        super().__init__()
        self.logits = torch.log(two_hot(torch.tensor(value), bins) + 1e-30)

    def forward(self, x):
        return self.logits.expand(*x.shape[:-1], -1)


def test_value_bins_learn_v_from_decoded_targets_with_two_hot_cross_entropy():
    """value_bins=N, value_of=data: V's N logits decode to their expectation over the bins, the TD
    target reads the target head decoded the same way, and the loss is the two-hot cross-entropy."""
    bins = 21
    cfg = small_cfg(td_lambda=0.0, discount=0.9, history=2, value_bins=bins)
    model = WorldModel(cfg, 1)
    assert model._value[-1].out_features == bins and "_value_support" not in model.state_dict()
    batch = batch_for(cfg)
    batch["terminated"][:, 3] = True
    model._target_value = TwoHotConstant(float(symlog(torch.tensor(10.0))), bins)
    model._value = TwoHotConstant(float(symlog(torch.tensor(3.0))), bins)
    terms, metrics = model.loss(batch)
    k = cfg.history
    rewards, ends = batch["reward"][:, k - 1:], batch["terminated"][:, k - 1:]
    targets = rewards[:, 1:] + 0.9 * (1 - ends[:, 1:].float()) * 10.0
    torch.testing.assert_close(metrics["value_target_mean"], targets.mean())
    logits = model._value(torch.zeros(*targets.shape, 1))
    torch.testing.assert_close(terms["value"], two_hot_loss(logits, symlog(targets)))
    torch.testing.assert_close(model.value(torch.randn(5, cfg.latent_dim)), torch.full((5,), 3.0))


def test_value_bins_learn_both_q_heads_against_the_smaller_decoded_target():
    bins = 21
    cfg = small_cfg(value_of="policy", discount=0.9, history=2, value_bins=bins)
    model = WorldModel(cfg, 1)
    assert [head[-1].out_features for head in model._q] == [bins, bins]
    batch = batch_for(cfg)
    model._target_q = torch.nn.ModuleList([TwoHotConstant(float(symlog(torch.tensor(10.0))), bins),
                                           TwoHotConstant(float(symlog(torch.tensor(4.0))), bins)])
    model._q = torch.nn.ModuleList([TwoHotConstant(0.0, bins), TwoHotConstant(float(symlog(torch.tensor(2.0))), bins)])
    terms, metrics = model.loss(batch)
    k = cfg.history
    rewards, ends = batch["reward"][:, k - 1:], batch["terminated"][:, k - 1:]
    targets = symlog(rewards[:, 1:] + 0.9 * (1 - ends[:, 1:].float()) * 4.0)
    heads = [model._q[i](torch.zeros(*targets.shape, 1)) for i in (0, 1)]
    torch.testing.assert_close(terms["value"], (two_hot_loss(heads[0], targets) + two_hot_loss(heads[1], targets)) / 2)
    torch.testing.assert_close(metrics["q_spread"], symlog(torch.tensor(2.0)) / 2)
    z = torch.randn(5, cfg.latent_dim)
    torch.testing.assert_close(model.value(z), symexp(symlog(torch.tensor(2.0)) / 2).expand(5))  # the heads' mean


@pytest.mark.parametrize("value_of", ["data", "policy"])
def test_value_bins_heads_train_and_a_saved_model_reads_the_same_values(value_of, tmp_path):
    cfg = small_cfg(value_of=value_of, value_bins=21, value_on_imagined=value_of == "data")
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", 3e-3, cfg.grad_clip)
    batch = batch_for(cfg)
    batch["reward"][:] = 1.0
    first = trainer.update(batch)["loss/value"]
    for _ in range(40):
        last = trainer.update(batch)["loss/value"]
    assert last < 0.6 * first
    z = torch.randn(6, cfg.latent_dim)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    again = WorldModel(cfg, 1)
    again.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    torch.testing.assert_close(again.value(z), model.value(z))
    assert torch.equal(again._value_support, two_hot_support(21))


class LastInput(torch.nn.Module):
    """A Q head that reads the action's last entry as the value: `(..., D + A)` -> `(..., 1)`."""

    def forward(self, x):
        return x[..., -1:]


def test_q_steps_gives_q_of_the_policy_n_step_targets_on_the_steps_that_have_them():
    """q_steps=n: Q(z_t, a_{t+1}) learns r_{t+1} + γ r_{t+2} + ... + γ^n min_i Q'_i(z_{t+n}, π(z_{t+n})),
    for t = 0 .. T - n - 1, termination stopping the sum."""
    cfg = small_cfg(value_of="policy", discount=0.9, history=2, q_steps=3, seq_len=8, model_horizon=3)
    model = WorldModel(cfg, 1)
    batch = batch_for(cfg)
    batch["terminated"][:, 4] = True
    model._target_q = torch.nn.ModuleList([Constant(float(symlog(torch.tensor(10.0)))),
                                           Constant(float(symlog(torch.tensor(4.0))))])
    model._q = torch.nn.ModuleList([LastInput(), LastInput()])
    terms, metrics = model.loss(batch)
    k, t_len = cfg.history, cfg.seq_len
    rewards, ends = batch["reward"][:, k - 1:].float(), batch["terminated"][:, k - 1:].float()
    actions = batch["action"][:, k - 1:, 0]
    targets = []
    for t in range(t_len - 3):
        g = 4.0
        for i in (3, 2, 1):
            g = rewards[:, t + i] + 0.9 * (1 - ends[:, t + i]) * g
        targets.append(g)
    targets = torch.stack(targets, 1)  # (B, T - 3)
    predicted = actions[:, 1:t_len - 2]  # the action taken at each of those steps
    torch.testing.assert_close(terms["value"], (predicted - symlog(targets)).square().mean())
    torch.testing.assert_close(metrics["value_target_mean"], targets.mean())
    assert metrics["q_spread"] == 0  # both heads read the same input


@pytest.mark.parametrize("discrete", [False, True])
def test_the_policy_maximising_q_moves_only_the_policy_and_q_only_the_q_heads(discrete):
    cfg = small_cfg(value_of="policy")
    action = ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", 2)
    model = WorldModel(cfg, action)
    terms, _ = model.loss(batch_for(cfg, action_dim=action.dim, discrete=discrete))
    shaped = {}
    for term in ("value", "policy"):
        model.zero_grad()
        terms[term].backward(retain_graph=True)
        shaped[term] = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert shaped == {"value": {"_q"}, "policy": {"_policy"}}
    z = torch.randn(5, cfg.latent_dim)
    expected = symexp(model._q_values(model._q, z, model.policy(z)).mean(0))
    torch.testing.assert_close(model.value(z), expected)  # what the planner reads at its horizon


def test_q_of_the_policy_trains_resumes_and_refuses_a_data_value_checkpoint(tmp_path):
    cfg = small_cfg(value_of="policy")
    model = WorldModel(cfg, 1)
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip)
    before = [p.detach().clone() for p in model._target_q.parameters()]
    out = trainer.update(batch_for(cfg))
    assert np.isfinite(out["loss/value"]) and np.isfinite(out["loss/policy"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model._target_q.parameters()))  # the EMA moved
    state = trainer.state_dict()
    data = WorldModel(small_cfg(), 1)
    with pytest.raises(CheckpointError, match="value_of='policy'"):
        WorldModelTrainer(data, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip).load_state_dict(state)


def test_simnorm_puts_every_latent_group_on_a_simplex_and_trains():
    cfg = small_cfg(latent_norm="simnorm", simnorm_group=8, objective="both")
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    obs = torch.randint(0, 255, (5, 3 * cfg.history, SIZE, SIZE), dtype=torch.uint8)
    z = model.encode(obs)
    nxt = model.step(z, torch.zeros(5, 1))
    for latent in (z, nxt):  # encoder and dynamics alike: D / 8 groups, each summing to 1
        groups = latent.reshape(5, -1, 8)
        assert groups.shape[1] == cfg.latent_dim // 8 and bool((groups > 0).all())
        torch.testing.assert_close(groups.sum(-1), torch.ones(5, cfg.latent_dim // 8))
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip)
    out = trainer.update(batch_for(cfg))
    assert all(np.isfinite(v) for k, v in out.items() if k.startswith("loss/"))
    # a LayerNorm model cannot take its checkpoint, and says which key differs
    with pytest.raises(CheckpointError, match="latent_norm='simnorm'"):
        WorldModelTrainer(WorldModel(small_cfg(), 1), torch.device("cpu"), "fp32", cfg.lr,
                          cfg.grad_clip).load_state_dict(trainer.state_dict())


def test_simnorm_groups_must_divide_the_latent():
    with pytest.raises(ConfigError, match="simnorm_group=6: it must be at least 2 and divide latent_dim=32"):
        small_cfg(latent_norm="simnorm", simnorm_group=6)
    small_cfg(latent_norm="layer", simnorm_group=6)  # ignored without simnorm


def test_an_encoder_saved_before_latent_norm_existed_loads_as_layer_norm(tmp_path):
    from worldmodel.checkpoint import load_checkpoint, save_checkpoint

    cfg = small_cfg()
    model = WorldModel(cfg, 1)
    model.save_encoder(tmp_path / "enc.pt")
    data = load_checkpoint(tmp_path / "enc.pt")
    for key in ("latent_norm", "simnorm_group"):  # as written before these keys existed
        del data["encoder_config"][key]
    save_checkpoint({k: v for k, v in data.items() if k not in ("kind", "format_version")}, tmp_path / "old.pt",
                    "encoder")
    fresh = WorldModel(cfg, 1)
    fresh.load_encoder(tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="latent_norm: source 'layer' vs this model 'simnorm'"):
        WorldModel(cfg.replace(latent_norm="simnorm"), 1).load_encoder(tmp_path / "old.pt")


def test_q_of_the_policy_needs_the_policy_prior():
    with pytest.raises(ConfigError, match="policy_prior=true"):
        small_cfg(value_of="policy", policy_prior=False)
    with pytest.raises(ConfigError, match="value_on_imagined"):
        small_cfg(value_of="policy", value_on_imagined=True)


def test_novelty_is_off_by_default_and_its_predictor_learns_only_from_detached_latents():
    assert not WorldModel(small_cfg(), 1).has_novelty
    assert "novelty" not in WorldModel(small_cfg(), 1).loss_weights()
    cfg = small_cfg(novelty=1.0)
    model = WorldModel(cfg, 1)
    terms, metrics = model.loss(batch_for(cfg))
    assert set(terms) == set(model.loss_weights()) and "novelty" in terms
    assert {"novelty_error", "novelty_imagined"} <= set(metrics)
    assert float(model._novelty_scale) == pytest.approx(float(metrics["novelty_error"]))  # the first batch sets it
    terms["novelty"].backward()
    shaped = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert shaped == {"_novelty_predictor"}  # not the encoder, not the fixed random network
    assert all(not p.requires_grad for p in model._novelty_target.parameters())


def test_novelty_scale_moves_one_percent_per_training_batch_and_not_in_eval_mode():
    cfg = small_cfg(novelty=1.0)
    model = WorldModel(cfg, 1)
    model._novelty_scale.fill_(5.0)
    _, metrics = model.loss(batch_for(cfg))
    assert float(model._novelty_scale) == pytest.approx(5.0 + 0.01 * (float(metrics["novelty_error"]) - 5.0))
    model.eval()
    before = float(model._novelty_scale)
    model.loss(batch_for(cfg))
    assert float(model._novelty_scale) == before


def test_novelty_is_low_on_the_latents_the_predictor_learned_and_high_elsewhere():
    """The point of the bonus: after fitting one region of latent space, a latent from another region
    reads several times as novel as one from the fitted region (at most about 1 there: the running scale
    is a slow mean of errors that fall as the predictor learns)."""
    torch.manual_seed(0)
    model = WorldModel(small_cfg(novelty=1.0), 1)
    d = model.cfg.latent_dim
    centre, other = torch.randn(d), torch.randn(d)
    seen = lambda n: centre + 0.3 * torch.randn(n, d)  # noqa: E731
    optimizer = torch.optim.Adam(model._novelty_predictor.parameters(), lr=1e-3)
    for _ in range(300):
        loss, _ = model._novelty_loss(seen(64)[:, None], torch.zeros(1, 1, 1, d))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    familiar = model.novelty(seen(256)).median()
    unseen = model.novelty(other + 0.3 * torch.randn(256, d)).median()
    assert familiar < 1.5
    assert unseen > 5 * familiar
