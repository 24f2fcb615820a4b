"""Linear-probe R² before and after self-supervised pretraining, per objective and seed; or what a
pretrained encoder reads of other environments before any training there.

    python scripts/bench_probe.py [env=Pendulum-v1] [preset=cpu] [steps=1500] [seeds=0,1,2]
                                  [objectives=masked,contrastive,both] [precision=bf16]
    python scripts/bench_probe.py encoders=pretrained:dmc,runs/pre targets=dm_control/hopper-stand-v0,...
                                  [episodes=16] [seeds=0,1,2]
    python scripts/bench_probe.py readout=dmc,dmc+enc_act=silu env=dm_control/cartpole-swingup-v0 episodes=80
                                  [updates=3000] [seeds=0,1,2]

With `encoders=`, each (encoder, target, seed) probes the encoder (a run folder, an encoder file
or a shipped `pretrained:<name>`) on the target's state, beside a fresh encoder of the same shape,
on the same random-action episodes of the target (`episodes` of them, the probe 4-fold cross-validated over them); pieces
under docs/results/probe_transfer/, table `bench_probe_transfer`. Nothing trains on the target.

With `readout=`, each (variant, seed) trains the variant's encoder *with supervision* to regress the
env's state from its stacked frames and scores it on held-out episodes (`probe.supervised_readout`):
what the architecture can be taught to read at all, an upper bound on the self-supervised probe.
Pieces under docs/results/readout/, table `bench_readout`.

Each (objective, seed) pair runs `scripts/pretrain.py` into `runs/bench_probe/...` and its result
is saved as its own JSON under docs/results/probe/ as soon as it finishes, so the benchmark can be
stopped and resumed: pairs with a saved result are skipped. The README table is rebuilt from
whatever results exist (mean ± 95% CI over seeds).
"""

from __future__ import annotations

import sys

import torch

from agents.analysis import results
from agents.analysis.bench import probe
from envs import EnvError
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_keys
from worldmodel.config import Config, ConfigError

KEYS = {
    "env": (str, "Pendulum-v1", "environment id"),
    "preset": (str, "cpu", "config preset of the pretraining runs"),
    "steps": (int, 1500, "pretraining updates per run"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "objectives": (str, "masked,contrastive,both", "pretraining objectives, comma-separated"),
    "precision": (str, "bf16", "precision of the pretraining runs (fp32, bf16, fp16)"),
    "encoders": (str, "", "probe these pretrained encoders on targets= instead (comma-separated sources)"),
    "targets": (str, "", "with encoders=: the environments to probe them on, comma-separated"),
    "episodes": (int, 16, "with encoders=: random-action probe episodes per target (4-fold cross-validated); "
                 "with readout=: random-action episodes (3/4 fit, 1/4 scored)"),
    "readout": (str, "", "supervised read-out of env's state by these variants' encoders (preset+overrides, comma-separated)"),
    "updates": (int, 3000, "with readout=: supervised updates of 64 windows"),
}


def readout(args: dict) -> None:
    """The `readout=` mode: each (variant, seed) piece unless saved, then the table."""
    env, episodes, updates = args["env"], args["episodes"], args["updates"]
    variants = args["readout"].split(",")
    for variant in variants:  # every variant checked before anything runs
        try:
            preset, overrides = results.split_preset(variant)
            Config.from_preset(preset, **overrides)
        except SystemExit as e:
            raise results.bad_argument(str(e.code)) from None
        except ConfigError as e:
            raise results.bad_argument(f"readout={variant}: {e}") from None
    for seed in results.int_list("seeds", args["seeds"]):
        for variant in variants:
            path = probe.readout_piece_path(env, variant, episodes, updates, seed)
            if path.exists():
                continue
            try:
                piece = probe.supervised_readout(env, variant, episodes, updates, seed)
            except (ConfigError, EnvError, ValueError) as e:
                raise results.bad_argument(f"readout of {env} by {variant}: {e}") from None
            threads = torch.get_num_threads()
            results.write_piece(path, {**piece, "command": results.command_line(with_threads=True), "threads": threads,
                                       "machine": {**results.machine(), "threads": threads}})
            print(f"{variant} seed {seed}: read-out R² {piece['r2']:.3f} ("
                  + " / ".join(f"{v:.2f}" for v in piece["r2_per_dim"]) + f") in {piece['seconds']:.0f} s", flush=True)
            probe.save_readout_table()
    probe.save_readout_table()


def probe_transfer(args: dict) -> None:
    """The `encoders=` mode: each (encoder, target, seed) piece unless saved, then the table."""
    targets = [t for t in args["targets"].split(",") if t]
    if not targets:
        raise results.bad_argument("encoders= needs targets=<env id>,... to probe them on.")
    for seed in results.int_list("seeds", args["seeds"]):
        for encoder in args["encoders"].split(","):
            for target in targets:
                path = probe.transfer_piece_path(encoder, target, args["episodes"], seed)
                if path.exists():
                    continue
                try:
                    piece = probe.probe_encoder_on(encoder, target, args["episodes"], seed)
                except (CheckpointError, ConfigError, EnvError, ValueError) as e:
                    raise results.bad_argument(f"{encoder} on {target}: {e}") from None
                threads = torch.get_num_threads()
                results.write_piece(path, {**piece, "command": results.command_line(with_threads=True), "threads": threads,
                                           "machine": {**results.machine(), "threads": threads}})
                print(f"{encoder} on {target} seed {seed}: probe R² {piece['r2_transferred']:.3f} "
                      f"(fresh encoder {piece['r2_fresh']:.3f})", flush=True)
                probe.save_transfer_table()
    probe.save_transfer_table()


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_probe.py")
    if args["encoders"] and args["readout"]:
        raise results.bad_argument("encoders= and readout= are two modes: give one of them.")
    if args["encoders"]:
        return probe_transfer(args)
    if args["readout"]:
        return readout(args)
    env, preset = args["env"], args["preset"]
    steps, precision = args["steps"], args["precision"]
    seeds = results.int_list("seeds", args["seeds"])
    for seed in seeds:
        for objective in args["objectives"].split(","):
            if probe.piece_path(env, preset, objective, steps, seed).exists():
                continue
            result = probe.run_piece(env, preset, objective, seed, steps, precision)
            print(f"{objective} seed {seed}: probe R² {result['r2_untrained']:.3f} -> {result['r2_trained']:.3f}",
                  flush=True)
            probe.save_table()


if __name__ == "__main__":
    main(sys.argv[1:])
