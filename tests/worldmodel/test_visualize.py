"""Decoders for latents, open-loop rollouts, masked views, and the imagined-rollout video writer."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from agents.analysis.imagine import (
    decoder_for,
    needs_fitted_decoder,
    write_imagined_video,
)
from agents.analysis.video import check_video_path, imagined_frame_shape
from worldmodel.config import Config
from worldmodel.encoders import preprocess
from worldmodel.masking import patchify
from worldmodel.model import WorldModel
from worldmodel.probe import episode_latents
from worldmodel.visualize import (
    eval_mode,
    fit_decoder,
    latent_frame_pairs,
    masked_view,
    open_loop,
    own_decoder,
)


def _model(**overrides) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(Config.from_preset("debug", **overrides), 1).eval()


def _episode(length: int = 16, seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, 256, (length, 3, 64, 64), dtype=torch.uint8, generator=g)
    action = torch.rand(length, 1, generator=g) * 2 - 1
    action[0] = 0
    return TensorDict({"obs": obs, "action": action}, batch_size=[length])


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_own_decoder_only_for_raw_pixel_targets():
    assert own_decoder(_model(norm_pix=False)).kind == "own"
    assert own_decoder(_model()) is None  # per-patch-normalised pixels are not viewable
    assert own_decoder(_model(objective="contrastive")) is None
    assert own_decoder(_model(objective="masked", mask_target="latent")) is None


def test_eval_mode_restores_the_previous_mode_also_on_an_error():
    model = _model().train()
    with pytest.raises(RuntimeError), eval_mode(model):
        assert not model.training
        raise RuntimeError
    assert model.training
    with pytest.raises(ValueError, match="uint8"):
        latent_frame_pairs(model, torch.zeros(1, 4, 3, 64, 64))
    assert model.training and all(m.training for m in model.modules())
    with eval_mode(model.eval()):
        pass
    assert not model.training


def test_decoder_choice():
    pixel, contrastive = _model(norm_pix=False), _model(objective="contrastive")
    assert not needs_fitted_decoder(pixel) and needs_fitted_decoder(pixel, "fitted")
    assert needs_fitted_decoder(contrastive) and needs_fitted_decoder(contrastive, "fitted")
    with pytest.raises(ValueError, match="no viewable decoder of its own"):
        needs_fitted_decoder(contrastive, "own")
    with pytest.raises(ValueError, match="decoder='x' is not valid"):
        needs_fitted_decoder(pixel, "x")
    assert decoder_for(pixel, pixel.cfg, kind="own").kind == "own"
    assert decoder_for(pixel, pixel.cfg, episodes=[_episode(8)], steps=2, kind="fitted").kind == "fitted"


def test_video_path_must_be_mp4_or_gif():
    assert check_video_path("a/b.GIF") == Path("a/b.GIF")
    with pytest.raises(ValueError, match=r"^out=a/b\.avi: the video must be a \.mp4 or \.gif file\.$"):
        check_video_path("a/b.avi")


def test_latent_frame_pairs_from_sequences_and_episodes():
    model = _model()
    k = model.history
    sequences = torch.randint(0, 256, (3, 6, 3, 64, 64), dtype=torch.uint8)
    latents, frames = latent_frame_pairs(model, sequences)
    assert latents.shape == (3 * (6 - k + 1), 32) and torch.equal(frames[0], sequences[0, k - 1])
    episode = _episode(10)
    latents, frames = latent_frame_pairs(model, [episode["obs"]])
    assert latents.shape == (10, 32) and torch.equal(frames, episode["obs"])


def test_fitted_decoder_learns_without_touching_the_model():
    model = _model(objective="contrastive")
    before = _snapshot(model)
    # Frames whose colour is set by the first latent coordinate: learnable from the latents alone.
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(256, 32, generator=g)
    frames = ((latents[:, :1, None, None].tanh() + 1) * 127).to(torch.uint8).expand(-1, 3, 64, 64).contiguous()
    decoder = fit_decoder(model.cfg, latents, frames, steps=150, seed=0)
    assert decoder.kind == "fitted" and "frozen latents" in decoder.description
    mean_frame_mse = (preprocess(frames) - preprocess(frames).mean(0)).square().mean()
    assert decoder.fit_mse < 0.5 * float(mean_frame_mse)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_open_loop_imagines_from_the_last_context_latent_with_the_actions_taken():
    model = _model(norm_pix=False)
    episode = _episode(16)
    context, horizon = 3, 8
    rollout = open_loop(model, episode, context, horizon, own_decoder(model))
    assert rollout.real.shape == rollout.decoded.shape == (context + horizon, 3, 64, 64)
    assert rollout.decoded.dtype == torch.uint8 and rollout.horizon == horizon
    assert rollout.pixel_mse.shape == rollout.latent_cosine_error.shape == (horizon,)
    assert rollout.recon_mse.shape == (context + horizon,)
    assert ((rollout.latent_cosine_error >= 0) & (rollout.latent_cosine_error <= 2)).all()
    with torch.no_grad():
        z = episode_latents(model.encode_sequence, episode["obs"], model.history, torch.device("cpu"))
        expected = model.imagine(z[context - 1][None], episode["action"][context:context + horizon][None])[0]
    torch.testing.assert_close(rollout.latents[context:], expected)
    torch.testing.assert_close(rollout.latents[:context], z[:context])
    assert torch.equal(rollout.real, episode["obs"][:context + horizon])


def test_open_loop_refuses_a_horizon_longer_than_the_episode():
    model = _model(norm_pix=False)
    with pytest.raises(ValueError, match="horizon=20"):
        open_loop(model, _episode(16), 4, 20, own_decoder(model))


@pytest.mark.parametrize("target", ["pixel", "latent"])
def test_masked_view_keeps_visible_patches_and_fills_hidden_ones(target):
    model = _model(objective="masked", mask_target=target)
    episode = _episode(12)
    latents, frames = latent_frame_pairs(model, [episode["obs"]])
    decoder = fit_decoder(model.cfg, latents, frames, steps=2)
    view = masked_view(model, episode, 10, decoder, seed=3)
    assert view.masked.shape == view.filled.shape == (10, 3, 64, 64) and view.hidden.shape == (10, 64)
    assert view.hidden.any() and not view.hidden.all()
    real, filled = patchify(episode["obs"][:10], 8), patchify(view.filled, 8)
    visible = ~view.hidden
    assert torch.equal(filled[visible], real[visible])
    assert (patchify(view.masked, 8)[view.hidden] == 128).all()  # hidden = mid-grey
    again = masked_view(model, episode, 10, decoder, seed=3)
    assert torch.equal(again.hidden, view.hidden)


def test_masked_view_needs_a_masked_objective():
    with pytest.raises(ValueError, match="masked"):
        masked_view(_model(objective="contrastive"), _episode(), 5)


def test_sample_mask_is_reproducible_and_shaped():
    model = _model()
    a = model.sample_mask(2, 7, torch.Generator().manual_seed(0))
    b = model.sample_mask(2, 7, torch.Generator().manual_seed(0))
    assert a.shape == (2, 7, 64) and a.dtype == torch.bool and torch.equal(a, b)


def test_write_imagined_video_for_the_loop(tmp_path):
    """What the training loop calls: a video, errors beside it, the RNG left alone, the decoder reusable."""
    model = _model(objective="contrastive")
    episodes = [_episode(12, seed=0), _episode(12, seed=1)]
    rng = torch.get_rng_state()
    decoder, errors = write_imagined_video(model, model.cfg, episodes, tmp_path / "v.mp4", context=2, horizon=5,
                                           decoder_steps=5, scale=2)
    assert torch.equal(rng, torch.get_rng_state())
    frames = iio.imread(tmp_path / "v.mp4")
    assert frames.shape == (2 * (2 + 5), *imagined_frame_shape(64, 2, 3), 3)
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["decoder"] == errors["decoder"] == "fitted" and saved["horizon"] == 5
    assert len(saved["per_step"]["pixel_mse"]) == 5 and np.isfinite(saved["per_step"]["latent_cosine_error"]).all()
    assert set(errors["metrics"]) >= {"imagine/pixel_mse", "imagine/latent_cosine_error"}
    assert (tmp_path / "v.csv").read_text().splitlines()[0] == "step,pixel_mse,latent_cosine_error,recon_pixel_mse"
    again, _ = write_imagined_video(model, model.cfg, episodes, tmp_path / "v.gif", decoder=decoder,
                                    decoder_steps=0, context=2, horizon=5, scale=1)
    assert again is decoder and len(iio.imread(tmp_path / "v.gif")) == 14


def test_write_imagined_video_with_own_decoder_and_masked_panels(tmp_path):
    model = _model(norm_pix=False)
    decoder, errors = write_imagined_video(model, model.cfg, [_episode(10)], tmp_path / "v.mp4", context=2,
                                           horizon=4, scale=2)
    assert decoder.kind == errors["decoder"] == "own" and errors["decoder_fit_mse"] is None
    assert iio.imread(tmp_path / "v.mp4").shape == (6, *imagined_frame_shape(64, 2, 5), 3)
    with pytest.raises(ValueError, match="horizon"):
        write_imagined_video(model, model.cfg, [_episode(10)], tmp_path / "w.mp4", context=4, horizon=7)
    assert not (tmp_path / "w.mp4").exists() and not (tmp_path / "w.json").exists()


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_decoder_fits_inside_an_evaluation_without_gradients(context, tmp_path):
    model = _model(objective="contrastive")
    with context():
        decoder, errors = write_imagined_video(model, model.cfg, [_episode(8)], tmp_path / "v.gif", context=2,
                                               horizon=3, decoder_steps=3, scale=1)
    assert decoder.kind == "fitted" and np.isfinite(decoder.fit_mse) and len(errors["per_step"]["step"]) == 3
