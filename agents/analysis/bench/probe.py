"""Linear-probe R² before and after self-supervised pretraining (`scripts/bench_probe.py`), per
objective and seed, piece by piece: each (objective, seed) pretrains with `scripts/pretrain.py`
and is saved as its own JSON under `PIECES`, and the table is rebuilt from whatever pieces exist.

    path = piece_path("Pendulum-v1", "cpu", "both", 1500, seed=0)
    if not path.exists():
        result = run_piece("Pendulum-v1", "cpu", "both", seed=0, steps=1500, precision="bf16")
    save_table()
"""

from __future__ import annotations

import statistics
from pathlib import Path

from agents.analysis import results
from agents.analysis.metrics import read_metrics

PIECES = results.RESULTS / "probe"
"""Where each finished piece is saved."""
RUNS = results.ROOT / "runs" / "bench_probe"
"""Where the pieces' pretraining runs go (a stopped one resumes)."""


def piece_path(env: str, preset: str, objective: str, steps: int, seed: int) -> Path:
    """Where one piece's JSON lives."""
    return PIECES / f"{results.slug(env)}__{preset}__{objective}__{steps}__{seed}.json"


def run_pair(env: str, preset: str, objective: str, seed: int, steps: int, precision: str) -> dict:
    """Pretrain (or resume) one piece for `steps` updates, probing every quarter: its R² untrained
    and pretrained (overall and per state dim), the R² curve and the median update rate."""
    run_dir = RUNS / f"{results.slug(env)}__{preset}__{objective}__{seed}"
    args = [f"env={env}", f"preset={preset}", f"objective={objective}", f"seed={seed}", f"pretrain_updates={steps}",
            f"pretrain_probe_every={max(steps // 4, 1)}", f"precision={precision}", f"run_dir={run_dir}",
            "tensorboard=false"]
    if results.resumable(run_dir):
        args.append("resume=true")
    results.run_script("pretrain", *args)
    records = read_metrics(run_dir / "metrics.jsonl")
    probes = [r for r in records if "probe/r2" in r]
    rates = [r["train/updates_per_second"] for r in records if "train/updates_per_second" in r]
    return {"env": env, "preset": preset, "objective": objective, "seed": seed, "steps": steps,
            "precision": precision, "r2_untrained": probes[0]["probe/r2"], "r2_trained": probes[-1]["probe/r2"],
            "r2_trained_per_dim": [v for k, v in sorted(probes[-1].items()) if k.startswith("probe/r2_dim")],
            "curve": [(r["step"], r["probe/r2"]) for r in probes], "updates_per_second": statistics.median(rates),
            "seconds": records[-1]["time"]}


def run_piece(env: str, preset: str, objective: str, seed: int, steps: int, precision: str) -> dict:
    """`run_pair`, saved as its piece."""
    result = run_pair(env, preset, objective, seed, steps, precision)
    results.write_piece(piece_path(env, preset, objective, steps, seed), result)
    return result


def table() -> dict:
    """README table: per (env, preset, objective, updates), mean ± 95% CI over seeds."""
    rows = []
    groups = results.load_pieces(PIECES, lambda r: (r["env"], r["preset"], r["objective"], r["steps"]))
    for (env, preset, objective, steps), runs in sorted(groups.items()):
        before = [r["r2_untrained"] for r in runs]
        after = [r["r2_trained"] for r in runs]
        dims = [statistics.mean(d) for d in zip(*(r["r2_trained_per_dim"] for r in runs))]
        rows.append([env, preset, objective, steps, len(runs),
                     results.mean_ci(before, 3), results.mean_ci(after, 3),
                     " / ".join(f"{d:.2f}" for d in dims),
                     f"{statistics.mean(r['updates_per_second'] for r in runs):.1f}"])
    return {"columns": ["env", "preset", "objective", "updates", "seeds", "probe R² untrained",
                        "probe R² pretrained", "per state dim (pretrained)", "updates/s"], "rows": rows}


def save_table() -> None:
    """Rebuild docs/results/bench_probe.json (and the README table) from every piece there is."""
    results.save("bench_probe", table(), results.piece_names(PIECES), results.command_line())


# --- the probe of a pretrained encoder on other envs, before any training there ---------------
TRANSFER_PIECES = results.RESULTS / "probe_transfer"
"""Where each (encoder, target, seed) piece of the transfer probe is saved."""


def transfer_piece_path(encoder: str, target: str, episodes: int, seed: int) -> Path:
    name = encoder.replace(":", "-").replace("/", "-").strip("-.")
    return TRANSFER_PIECES / f"{name}__{results.slug(target)}__{episodes}__{seed}.json"


def probe_encoder_on(encoder: str, target: str, episodes: int, seed: int, preset: str = "dmc") -> dict:
    """Probe R² of `encoder` (a run folder, file or `pretrained:<name>`) on `target`'s state, and of
    a fresh encoder of the same shape (seeded by `seed`), on the same `episodes` random-action
    episodes of `target` (its suite protocol's action repeat; 4-fold cross-validated; probe seed
    `seed + 1000`): what the encoder reads of a new env before any training there."""
    import torch

    from agents.analysis.probe import probe_episodes
    from agents.training.assembly import build_model, resolve_config
    from agents.training.pretrained import encoder_objective, load_pretrained_encoder
    from worldmodel.probe import cross_validated_probe

    pretrained = load_pretrained_encoder(encoder)
    cfg = resolve_config([f"preset={preset}", f"env={target}", f"encoder_from={encoder}", f"probe_episodes={episodes}",
                          f"seed={seed}"])
    recorded, spec = probe_episodes(cfg, seed=seed + 1_000)
    if "state" not in recorded[0].keys():
        raise ValueError(f"{target} gives no low-dimensional state to probe against.")
    out = {"encoder": encoder, "target": target, "episodes": episodes, "seed": seed, "preset": preset,
           "encoder_envs": pretrained.env, "encoder_objective": encoder_objective(encoder), "image_size": cfg.image_size}
    device = torch.device("cpu")
    for label, source in (("transferred", pretrained), ("fresh", None)):
        torch.manual_seed(seed)
        model = build_model(cfg.replace(encoder_from="") if source is None else cfg, spec, device, source).eval()
        with torch.no_grad():
            result = cross_validated_probe(model.encode_sequence, recorded, model.history, device)
        out[f"r2_{label}"], out[f"r2_{label}_per_dim"] = result.r2, result.r2_per_dim
    return out


def transfer_table() -> dict:
    """Per (encoder, target, episodes): probe R² of the encoder and of a fresh one, mean ± 95% CI over seeds."""
    from agents.training.pretrained import encoder_objective

    groups = results.load_pieces(TRANSFER_PIECES, lambda r: (r["encoder"], r["target"], r["episodes"]))
    rows = []
    for (encoder, target, episodes), pieces in sorted(groups.items()):
        # pieces saved before 2026-12-08 lack `encoder_objective`; all of them probed shipped encoders
        objective = pieces[0].get("encoder_objective") or encoder_objective(encoder)
        mine = [p["r2_transferred"] for p in pieces]
        fresh = [p["r2_fresh"] for p in pieces]
        dims = [statistics.mean(d) for d in zip(*(p["r2_transferred_per_dim"] for p in pieces))]
        seen = target in str(pieces[0].get("encoder_envs", "")).split(",")
        rows.append([encoder, objective, target.removeprefix("dm_control/"), "yes" if seen else "no", episodes, len(pieces),
                     results.mean_ci(mine, 3), results.mean_ci(fresh, 3),
                     f"{statistics.mean(mine) - statistics.mean(fresh):+.3f}", " / ".join(f"{d:.2f}" for d in dims)])
    return {"columns": ["encoder", "encoder's objective", "target", "target among its envs", "probe episodes", "seeds",
                        "probe R² (transferred)", "probe R² (fresh encoder)", "difference",
                        "per state dim (transferred)"], "rows": rows}


def save_transfer_table() -> None:
    """Rebuild docs/results/bench_probe_transfer.json (and its docs table) from every piece there is."""
    results.save("bench_probe_transfer", transfer_table(), results.piece_names(TRANSFER_PIECES), results.command_line())


READOUT_PIECES = results.RESULTS / "readout"
"""Where each supervised read-out piece is saved."""


def readout_piece_path(env: str, variant: str, episodes: int, updates: int, seed: int) -> Path:
    return READOUT_PIECES / f"{results.slug(env)}__{variant}__{episodes}__{updates}__{seed}.json"


def supervised_readout(env: str, variant: str, episodes: int, updates: int, seed: int, batch: int = 64) -> dict:
    """How much of `env`'s state the encoder of `variant` (a preset and its overrides joined by `+`,
    e.g. `dmc+enc_act=silu`) can read when it is trained *with supervision* to regress it: the
    encoder and a linear head on its latent, `updates` Adam steps of `batch` windows of k stacked
    frames (the variant's history, augmentation and learning rate) against the state at the newest
    frame, standardised; then R² per state dim on held-out episodes (`episodes` random-action episodes
    at the suite protocol's action repeat, reset from `seed + 1000`: 3/4 fit, 1/4 scored).

    No self-supervised objective can make a latent hold more than its encoder can be taught to read,
    so this bounds the linear probe from above: where it is low, the architecture, not the objective,
    is what falls short. Returns the piece: `r2`, `r2_per_dim`, `seconds` of the updates and more.
    """
    import time

    import torch

    from agents.analysis.probe import probe_episodes, split_episodes
    from agents.training.assembly import build_model, resolve_config
    from worldmodel.augment import random_shift
    from worldmodel.history import pad_history
    from worldmodel.probe import episode_latents

    preset, overrides = results.split_preset(variant)
    cfg = resolve_config([f"preset={preset}", f"env={env}", f"probe_episodes={episodes}", f"seed={seed}",
                          *(f"{key}={value}" for key, value in overrides.items())])
    recorded, spec = probe_episodes(cfg, seed=seed + 1_000)
    if "state" not in recorded[0].keys():
        raise ValueError(f"{env} gives no low-dimensional state to read out.")
    fit, score = split_episodes(recorded)
    k, device = cfg.history, torch.device("cpu")
    torch.manual_seed(seed)
    model = build_model(cfg, spec, device)
    frames = [pad_history(e["obs"], k) for e in fit]
    states = torch.cat([e["state"] for e in fit]).float()
    mean, std = states.mean(0), states.std(0).clamp_min(1e-6)
    index = [(i, t) for i, e in enumerate(fit) for t in range(e["obs"].shape[0])]
    head = torch.nn.Linear(cfg.latent_dim, states.shape[1])
    encoder_params = [p for n, p in model.named_parameters() if n.startswith("_encoder.")]
    optimizer = torch.optim.Adam([*encoder_params, *head.parameters()], lr=cfg.lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(updates):
        picks = torch.randint(0, len(index), (batch,), generator=generator).tolist()
        windows = torch.stack([frames[index[j][0]][index[j][1]:index[j][1] + k] for j in picks])  # (B, k, 3, H, W)
        targets = torch.stack([(fit[index[j][0]]["state"][index[j][1]].float() - mean) / std for j in picks])
        if cfg.augment == "shift":
            windows = random_shift(windows, cfg.shift_pad, generator)
        loss = torch.nn.functional.mse_loss(head(model.encode_sequence(windows)[:, -1]), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([head(episode_latents(model.encode_sequence, e["obs"], k, device)) for e in score])
    actual = torch.cat([e["state"] for e in score]).float()
    per_dim = 1 - ((predicted * std + mean - actual) ** 2).mean(0) / actual.var(0).clamp_min(1e-12)
    return {"env": env, "variant": variant, "episodes": episodes, "updates": updates, "seed": seed, "batch": batch,
            "fit_frames": len(index), "r2": float(per_dim.mean()), "r2_per_dim": [round(float(v), 4) for v in per_dim],
            "seconds": round(seconds, 1), "loss": loss.item()}


def readout_table() -> dict:
    """Per (env, variant, episodes, updates): supervised read-out R², mean ± 95% CI over seeds, and per dim."""
    groups = results.load_pieces(READOUT_PIECES, lambda r: (r["env"], r["variant"], r["episodes"], r["updates"]))
    rows = []
    for (env, variant, episodes, updates), pieces in sorted(groups.items()):
        dims = [statistics.mean(d) for d in zip(*(p["r2_per_dim"] for p in pieces))]
        rows.append([env.removeprefix("dm_control/"), variant, episodes, updates, len(pieces),
                     results.mean_ci([p["r2"] for p in pieces], 2), " / ".join(f"{d:.2f}" for d in dims),
                     f"{statistics.mean(p['seconds'] for p in pieces):.0f}"])
    return {"columns": ["env", "variant", "episodes", "updates", "seeds", "read-out R² (held-out)",
                        "per state dim", "seconds of updates"], "rows": rows}


def save_readout_table() -> None:
    """Rebuild docs/results/bench_readout.json (and its docs table) from every piece there is."""
    results.save("bench_readout", readout_table(), results.piece_names(READOUT_PIECES), results.command_line())
