"""End to end: a run folder's files are data, never code, and a damaged one is one clear error.

Every entry point that reads a run folder (train.py resume=true, pretrain.py replay_from=,
evaluate.py, imagine.py source=replay, transfer.py encoder=) is handed a folder whose replay or
state.pt holds a pickled object that would create a marker file when unpickled: each refuses it, or
never reads it, and the marker never appears. Truncated, garbled and mismatched files end with exit 2
and one line, not a traceback or a run that trains on zeros.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensordict import NonTensorData, TensorDict

from worldmodel.replay import SequenceReplay

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = "step_000000200"


def script(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


class Touch:
    """Unpickling this creates `path`: a stand-in for the code a tampered file could run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("untrusted") / "run"
    proc = script("train", "preset=debug", "steps=200", f"run_dir={run_dir}", "tensorboard=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run, to damage."""
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def replay_of(run: Path) -> Path:
    return run / "checkpoints" / CHECKPOINT / "replay"


def poison_replay(run: Path, marker: Path) -> None:
    """Add a `NonTensorData` column holding a `Touch` to the checkpoint's replay storage."""
    storage = replay_of(run) / "storage"
    data = TensorDict.load_memmap(storage).clone()  # our own clean files: nothing to unpickle yet
    data["evil"] = NonTensorData(Touch(marker), batch_size=data.batch_size)
    data.memmap(storage, existsok=True)
    assert (storage / "evil").is_dir()


def poison_state(run: Path, marker: Path) -> None:
    torch.save({"format_version": 1, "kind": "online_state", "evil": Touch(marker)},
               run / "checkpoints" / CHECKPOINT / "state.pt")


def one_clear_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]


# --- pickled objects ---------------------------------------------------------------------------
REFUSED = "Refusing to load the saved replay"


def test_resume_refuses_a_replay_that_would_unpickle(run, tmp_path):
    marker = tmp_path / "ran"
    poison_replay(run, marker)
    proc = script("train", f"run_dir={run}", "resume=true", "steps=400")
    one_clear_error(proc, REFUSED, "'evil'")
    assert not marker.exists()


def test_pretrain_replay_from_refuses_a_replay_that_would_unpickle(run, tmp_path):
    marker = tmp_path / "ran"
    poison_replay(run, marker)
    proc = script("pretrain", "preset=debug", f"replay_from={replay_of(run)}", f"run_dir={tmp_path / 'pre'}",
                  "pretrain_updates=2", "tensorboard=false")
    one_clear_error(proc, REFUSED)
    assert not marker.exists()


def test_imagine_from_the_replay_refuses_a_replay_that_would_unpickle(run, tmp_path):
    marker = tmp_path / "ran"
    poison_replay(run, marker)
    proc = script("imagine", f"run_dir={run}", "source=replay", "episodes=1", "context=1", "horizon=2",
                  f"out={tmp_path / 'v.gif'}")
    one_clear_error(proc, REFUSED)
    assert not marker.exists()


def test_evaluate_never_unpickles_the_replay_or_the_state(run, tmp_path):
    marker = tmp_path / "ran"
    poison_replay(run, marker)
    proc = script("evaluate", f"run_dir={run}", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-3000:]  # evaluate does not read the replay
    poison_state(run, marker)
    one_clear_error(script("evaluate", f"run_dir={run}", "episodes=1"), "Refusing to load", "state.pt")
    assert not marker.exists()


def test_transfer_from_a_run_folder_never_unpickles_its_replay_or_state(run, tmp_path):
    marker = tmp_path / "ran"
    poison_replay(run, marker)
    common = ["preset=debug", "env=CartPole-v1", "mode=frozen", "steps=20", "tensorboard=false"]
    proc = script("transfer", f"encoder={run}", *common, f"run_dir={tmp_path / 't1'}")
    assert proc.returncode == 0, proc.stderr[-3000:]  # only the weights are read, with weights_only
    poison_state(run, marker)
    one_clear_error(script("transfer", f"encoder={run}", *common, f"run_dir={tmp_path / 't2'}"),
                    "Refusing to load", "state.pt")
    assert not marker.exists()


# --- damaged files -----------------------------------------------------------------------------
def test_a_checkpoint_holds_only_the_filled_replay_rows(trained):
    replay = SequenceReplay.from_saved(replay_of(trained), 2)
    on_disk = sum(f.stat().st_size for f in replay_of(trained).rglob("*.memmap"))
    assert on_disk == len(replay) * replay.bytes_per_transition < replay.capacity * replay.bytes_per_transition / 10


def test_resume_with_a_truncated_replay_exits_2_naming_the_file(run):
    obs = replay_of(run) / "storage" / "obs.memmap"
    with open(obs, "r+b") as f:
        f.truncate(obs.stat().st_size // 3)
    one_clear_error(script("train", f"run_dir={run}", "resume=true", "steps=400"),
                    "obs.memmap holds", "bytes, its metadata says", "truncated")


def _cut(file: Path) -> None:
    file.write_text(file.read_text()[:40])


@pytest.mark.parametrize("damage,words", [
    (lambda run: (replay_of(run) / "meta.json").write_text("{garbled"), ["replay's meta.json is garbled"]),
    (lambda run: (replay_of(run) / "storage" / "meta.json").write_text("]]"), ["storage/meta.json is garbled"]),
    (lambda run: _cut(replay_of(run) / "storage" / "meta.json"), ["storage/meta.json is garbled or truncated"]),
    (lambda run: (run / "config.json").write_text('{"env": "Pendulum-v1", '), ["config.json is not a readable config"]),
    (lambda run: (run / "config.json").write_bytes(b"\x80\x81 not text"), ["config.json is not a readable config"]),
])
def test_resume_with_a_garbled_file_exits_2_with_one_line(run, damage, words):
    damage(run)
    one_clear_error(script("train", f"run_dir={run}", "resume=true", "steps=400"), *words)


def test_resume_into_another_latent_dim_names_the_key_and_the_parameters(run):
    config = json.loads((run / "config.json").read_text())
    assert config["latent_dim"] == 32
    (run / "config.json").write_text(json.dumps({**config, "latent_dim": 16}))
    one_clear_error(script("train", f"run_dir={run}", "resume=true", "steps=400"),
                    "the checkpoint was saved with latent_dim=32, this config has latent_dim=16",
                    "Parameters: _encoder.", "saved (32, ", "expected (16, ")


def test_resume_into_another_image_size_names_the_key(run):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "image_size": 32}))
    one_clear_error(script("train", f"run_dir={run}", "resume=true", "steps=400"),
                    "'obs_shape': ([3, 64, 64], [3, 32, 32])", "another image_size than this config")
