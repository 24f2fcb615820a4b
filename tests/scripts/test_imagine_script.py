"""End to end: imagined-rollout videos and learning-curve plots of tiny trained runs; bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from agents.analysis.video import imagined_frame_shape

ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _train(tmp_path_factory, name: str, *overrides: str) -> Path:
    run_dir = tmp_path_factory.mktemp(name) / "run"
    proc = script("train", "preset=debug", "steps=300", f"run_dir={run_dir}", "tensorboard=false", *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def both_run(tmp_path_factory) -> Path:
    """objective=both: masked (pixel targets, norm_pix) + contrastive."""
    return _train(tmp_path_factory, "both")


@pytest.fixture(scope="module")
def contrastive_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "contrastive", "objective=contrastive")


def _assert_one_clear_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagine.py: error:"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


def test_video_has_one_frame_per_step_and_the_panel_layout(both_run, tmp_path):
    out = tmp_path / "imagined.mp4"
    proc = script("imagine", f"run_dir={both_run}", f"out={out}", "episodes=2", "context=3", "horizon=6",
                  "decoder_steps=30", "policy=random")
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = iio.imread(out)
    # real · imagined · |error| · masked input · filled in, under the caption, 4x upscaled 64x64 panels.
    assert frames.shape == (2 * (3 + 6), *imagined_frame_shape(64, 4, 5), 3)
    errors = json.loads(out.with_suffix(".json").read_text())
    assert errors["decoder"] == "fitted"  # norm_pix=true: the model's own decoder is not viewable
    assert errors["episodes"] == 2 and errors["context"] == 3 and errors["horizon"] == 6
    assert errors["per_step"]["step"] == [1, 2, 3, 4, 5, 6]
    assert len(errors["per_step"]["pixel_mse"]) == len(errors["per_step"]["latent_cosine_error"]) == 6
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "step,pixel_mse,latent_cosine_error,recon_pixel_mse" and len(rows) == 7


def test_contrastive_only_model_gets_a_fitted_decoder_gif_from_the_replay(contrastive_run, tmp_path):
    out = tmp_path / "imagined.gif"
    proc = script("imagine", f"run_dir={contrastive_run}", f"out={out}", "episodes=1", "context=2", "horizon=5",
                  "decoder_steps=30", "source=replay", "scale=2", "decoder=fitted")
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = iio.imread(out)
    assert len(frames) == 2 + 5 and frames.shape[1:3] == imagined_frame_shape(64, 2, 3)
    errors = json.loads(out.with_suffix(".json").read_text())
    assert errors["decoder"] == "fitted" and errors["objective"] == "contrastive"
    assert errors["decoder_fit_mse"] is not None


def test_default_output_goes_into_the_run_folder_with_the_agent_acting(contrastive_run):
    proc = script("imagine", f"run_dir={contrastive_run}", "episodes=1", "context=2", "horizon=3",
                  "decoder_steps=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = (contrastive_run / "checkpoints" / "latest").read_text().strip()
    video = contrastive_run / "videos" / f"imagined_{checkpoint}.mp4"
    assert len(iio.imread(video)) == 5 and video.with_suffix(".json").is_file()


def test_run_folder_without_a_checkpoint_is_one_clear_error(both_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(both_run / "config.json", empty / "config.json")
    out = tmp_path / "x.mp4"
    _assert_one_clear_error(script("imagine", f"run_dir={empty}", f"out={out}"), "no checkpoint")
    assert not out.exists()


def test_horizon_longer_than_the_episode_is_one_clear_error(both_run, tmp_path):
    out = tmp_path / "x.mp4"
    # Debug Pendulum episodes: 200 steps / action_repeat 2 = 100 agent steps + the first frame.
    _assert_one_clear_error(script("imagine", f"run_dir={both_run}", f"out={out}", "horizon=500"), "horizon=500")
    _assert_one_clear_error(script("imagine", f"run_dir={both_run}", f"out={out}", "horizon=500", "source=replay"),
                            "horizon=500")
    _assert_one_clear_error(script("imagine", f"run_dir={both_run}", f"out={out.with_suffix('.avi')}"),
                            f"out={out.with_suffix('.avi')}: the video must be a .mp4 or .gif file.")
    assert not any(tmp_path.iterdir())


def test_plot_script_overlays_several_runs_in_a_png(both_run, contrastive_run, tmp_path):
    out = tmp_path / "curves.png"
    proc = script("plot", f"run_dir={both_run},{contrastive_run}", f"out={out}", "smooth=0.5",
                  "labels=both,contrastive")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_script_defaults_to_the_run_folder_and_refuses_a_folder_without_metrics(both_run, tmp_path):
    proc = script("plot", f"run_dir={both_run}", "keys=loss/*")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (both_run / "plots" / "learning_curves.png").stat().st_size > 0
    proc = script("plot", f"run_dir={tmp_path / 'nowhere'}")
    assert proc.returncode == 2 and proc.stderr.startswith("plot.py: error:") and "Traceback" not in proc.stderr
