"""Evaluate a trained agent: return mean ± std over fresh episodes, optionally with a video, and
optionally under out-of-distribution visual perturbations.

    python scripts/evaluate.py run_dir=runs/x episodes=10
    python scripts/evaluate.py run_dir=runs/x checkpoint=step_000010000 video=true
    python scripts/evaluate.py run_dir=runs/x perturb=color:3,noise:2
    python scripts/evaluate.py run_dir=runs/x samples=512 iterations=6    # the same agent, a wider search
    python scripts/evaluate.py run_dir=runs/x on_env=dm_control/cartpole-balance-v0   # on a sibling task
    python scripts/evaluate.py run_dir=runs/x acting=training   # with training's exploration noise

Loads the run's config and the latest (or the named) checkpoint, plans with exploration off, and
writes `eval_<checkpoint>.json` (and `videos/eval_<checkpoint>.mp4`) into the run folder; a
read-only run folder is evaluated all the same, its result printed and not saved. Where the env
has a low-dimensional state, the JSON also holds `probe_policy`: the linear probe's R² (per state
dimension too), 4-fold cross-validated over the evaluation's own episodes, i.e. what the latents
hold of the state along the agent's behaviour. It also holds `value_policy`: how well the value the
planner reads at its horizon predicts the discounted return that followed on those episodes
(correlation, R², bias; `agents.analysis.probe.value_on_episodes`), `reward_policy`: the same for the
reward head, step by step along the actions taken, with `bias_top`, its bias on the best quarter of
the transitions (`reward_on_episodes`), and `state_policy`: the mean and spread of each state
dimension over those episodes (where the agent goes: on cartpole-swingup, a cart parked at the end
of its rail shows as a cart-position mean near ±1.7). A run trained with `novelty` also gets
`novelty_policy`: the median and 90th percentile of the model's novelty over those steps and the
median at the episodes' first states (played with `on_env=dm_control/cartpole-balance-v0`: is the
upright, still start new to it?). `trace=true` also writes
`trace_<checkpoint>.json`: per episode and step, the state, the action, the reward and the
predicted one, the value and the return that followed (`beliefs_on_episode`), to see where the
model's beliefs and what happened part.

The planner's keys (`samples`, `iterations`, `horizon`, `elites`, `mppi_temperature`, `act_from`,
`policy_samples`, `planner`, `min_std`, `max_std`) may be given to plan differently with what the run
learned, e.g. to tell a search that falls short from a model or value that does: the JSON is then
`eval_<checkpoint>__<key>=<value>....json` and records them under `plan`.

`acting=training` plays the episodes as training does, with the plan's exploration noise on each
chosen action (and a run's optimism or novelty bonus), instead of noise-free: does the agent do
better when shaken out of the states its noise-free plans hold it in? The JSON is then
`eval_<checkpoint>__acting=training.json` and records `acting`.

`on_env=<id>` plays the agent on another env with the same action space, at the run's image size,
history and action repeat (e.g. a cartpole-swingup agent on cartpole-balance, which starts every
episode upright: does the model know that staying up pays?); every check above runs there too, and the
files get `__on_env=<id>` (with `/` as `-`) in their names and `trained_on` in the JSON.

With `perturb=name:severity[,name:severity...]` (names and severities in `envs/perturb.py`) the
same JSON also holds, next to the clean return: `probe` (the held-out linear-probe R² of the clean
frames, from `probe_episodes` random-action episodes) and `perturbations` (per spec: return and
probe R² under the perturbation, and their change from clean). Clean and perturbed episodes share
their seeds, and the probe is scored on the same held-out episodes with and without the
perturbation, so only the visual shift differs (see `agents/analysis/robustness.py`). On DeepMind
Control, `perturb=color_easy,color_hard` (DMC-GB's; `color_all_easy`, `color_all_hard`: ours, harder) recolours
the simulated scene itself (`envs/dmc_colors.py`).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from agents.analysis.probe import (
    beliefs_on_episode,
    novelty_on_episodes,
    probe_on_episodes,
    reward_on_episodes,
    state_on_episodes,
    value_on_episodes,
)
from agents.analysis.robustness import episode_returns, format_table, robustness
from agents.analysis.video import upscale, write_video
from agents.episodes import TrainingActing, other_env_config
from agents.training.assembly import PLAN_KEYS, load_run
from agents.training.runs import RunDir
from envs import EnvError, parse_perturbations
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_keys
from worldmodel.config import ConfigError

KEYS = {
    "run_dir": (str, ..., "run folder written by train.py"),
    "episodes": (int, 10, "evaluation episodes"),
    "checkpoint": (str, "latest", "checkpoint folder name under checkpoints/, or latest"),
    "seed": (int, 12345, "seed of the evaluation episodes"),
    "env": (str, "", "must match the run's env when given (a guard against evaluating the wrong run)"),
    "on_env": (str, "", "play the agent on this other env instead of its own: one with the same actions, seen at the "
                        "run's image size and action repeat (e.g. a sibling DMC task: a cartpole-swingup agent on "
                        "dm_control/cartpole-balance-v0, which starts upright); its results are saved apart"),
    "device": (str, "", "override the run's device (auto, cpu, cuda)"),
    "video": (bool, False, "record the episodes to videos/eval_<checkpoint>.mp4"),
    "trace": (bool, False, "also write trace_<checkpoint>.json: per step the state, action, reward and predicted "
                           "reward, value and the return that followed (not with perturb=)"),
    "fps": (int, 15, "video frame rate"),
    "perturb": (str, "", "also evaluate under name:severity perturbations, comma-separated (e.g. color:3,noise:2); "
                       "on DeepMind Control also color_easy / color_hard / color_all_easy / color_all_hard "
                       "(scene recoloured, no severity)"),
    "probe_episodes": (int, 8, "random-action episodes for the probe R² (3/4 fit, 1/4 scored); with perturb= only"),
    "acting": (str, "eval", "eval (noise-free, as every evaluation) or training (the plan's exploration noise on, as "
                            "in training)"),
    **{key: (str, "", f"plan with this {key} instead of the run's (the search only; what was learned is kept)")
       for key in PLAN_KEYS},
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "evaluate.py")
    try:
        perturbations = parse_perturbations(args["perturb"])
        if args["episodes"] < 1:
            raise ConfigError(f"episodes={args['episodes']} must be at least 1.")
        if perturbations and args["trace"]:
            raise ConfigError("trace=true traces the clean episodes only: drop perturb= (or trace=true).")
        if perturbations and args["probe_episodes"] < 2:
            raise ConfigError(f"probe_episodes={args['probe_episodes']} must be at least 2 (one to fit, one to score).")
        if args["acting"] not in ("eval", "training"):
            raise ConfigError(f"acting={args['acting']!r} is not valid: choose eval or training.")
        run = RunDir.open(args["run_dir"])
        cfg = run.config()
        if args["env"] and args["env"] != cfg.env:
            raise CheckpointError(f"{run.path} holds an agent trained on {cfg.env!r}, not {args['env']!r}.")
        plan = {key: args[key] for key in PLAN_KEYS if args[key] != ""}
        loaded = load_run(run, args["checkpoint"], seed=args["seed"], device=args["device"], plan=plan)
        cfg, folder = loaded.cfg, loaded.checkpoint
        if args["on_env"]:
            cfg = loaded.agent.cfg = other_env_config(loaded.agent.cfg, loaded.agent.model.action_spec, args["on_env"])
        saving = run.writable()  # checked before the evaluation, not after it
        if not saving:
            if args["video"]:
                raise CheckpointError(f"{run.path} is read-only: video=true cannot write its video there; drop "
                                      "video=true, or evaluate a copy of the run.")
            if args["trace"]:
                raise CheckpointError(f"{run.path} is read-only: trace=true cannot write its trace there; drop "
                                      "trace=true, or evaluate a copy of the run.")
            print(f"note: {run.path} is read-only: the result is printed, not saved.", file=sys.stderr)

        agent = TrainingActing(loaded.agent) if args["acting"] == "training" else loaded.agent
        frames: list[np.ndarray] = []
        traced: list[dict] = []
        record = (lambda obs: frames.append(upscale(obs[0, -3:].transpose(1, 2, 0), 4))) if args["video"] else None
        if perturbations:
            report = robustness(agent, perturbations, args["episodes"], args["seed"], args["probe_episodes"],
                                on_step=record)
            returns = np.asarray(report["clean"]["returns"])
        else:
            played: list = []
            returns = episode_returns(agent, args["episodes"], args["seed"], on_step=record, trace=played)
            policy_probe = probe_on_episodes(loaded.agent.model, loaded.agent.device, played)
            model, device = loaded.agent.model, loaded.agent.device
            beliefs = [beliefs_on_episode(model, device, ep, cfg.discount) for ep in played]  # one encoding pass
            value_check = value_on_episodes(model, device, played, cfg.discount, beliefs)
            reward_check = reward_on_episodes(model, device, played, beliefs)
            novelty_check = novelty_on_episodes(beliefs)
            states = state_on_episodes(played)
            traced = [_trace(ep, known) for ep, known in zip(played, beliefs)] if args["trace"] else []
    except (ConfigError, EnvError, CheckpointError, ValueError) as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2

    result = {"env": cfg.env, **({"trained_on": loaded.cfg.env} if args["on_env"] else {}),
              "checkpoint": folder.name, "episodes": len(returns),
              "return_mean": float(returns.mean()), "return_std": float(returns.std()),
              "returns": returns.tolist()}
    if plan:
        result["plan"] = {key: getattr(cfg, key) for key in plan}
    if args["acting"] != "eval":
        result["acting"] = args["acting"]
    if not perturbations and policy_probe:
        result["probe_policy"] = policy_probe
    if not perturbations and value_check:
        result["value_policy"] = value_check
    if not perturbations and reward_check:
        result["reward_policy"] = reward_check
    if not perturbations and states:
        result["state_policy"] = states
    if not perturbations and novelty_check:
        result["novelty_policy"] = novelty_check
    if perturbations:
        result["probe"] = {**report["probe"], "r2": report["clean"]["probe_r2"],
                           "r2_per_dim": report["clean"]["probe_r2_per_dim"]}
        result["perturbations"] = report["perturbations"]
    label = "".join(f"__{key}={value}" for key, value in result.get("plan", {}).items())
    if args["acting"] != "eval":
        label += f"__acting={args['acting']}"
    if args["on_env"]:
        label += "__on_env=" + cfg.env.replace("/", "-")
    if saving:
        (run.path / f"eval_{folder.name}{label}.json").write_text(json.dumps(result, indent=2))
    if traced:  # saving is true here: a read-only run folder with trace=true was refused above
        trace_path = run.path / f"trace_{folder.name}{label}.json"
        trace_path.write_text(json.dumps({"env": cfg.env, "checkpoint": folder.name, "discount": cfg.discount,
                                          "episodes": traced}))
        print(f"trace: {trace_path}")
    if frames:
        path = write_video(frames, run.videos / f"eval_{folder.name}.mp4", fps=args["fps"])
        print(f"video: {path}")
    print(f"{cfg.env} {folder.name}: return {returns.mean():.1f} ± {returns.std():.1f} over {len(returns)} episodes")
    if not perturbations and policy_probe:
        print(f"probe R² on these episodes (4-fold): {policy_probe['r2']:.3f} (per state dim "
              + " / ".join(f"{r:.2f}" for r in policy_probe["r2_per_dim"]) + ")")
    if not perturbations and value_check:
        print(f"value vs the discounted return on these episodes: correlation {value_check['corr']:.3f}, "
              f"R² {value_check['r2']:.3f}, bias {value_check['bias']:+.2f} of the mean |return|")
    if not perturbations and reward_check:
        print(f"reward head on these steps: correlation {reward_check['corr']:.3f}, R² {reward_check['r2']:.3f}, "
              f"bias {reward_check['bias']:+.2f} (on the best quarter of them {reward_check['bias_top']:+.2f})")
    if not perturbations and states:
        print("state along these episodes, mean ± std per dim: "
              + " / ".join(f"{m:+.2f} ± {d:.2f}" for m, d in zip(states["mean"], states["std"])))
    if perturbations:
        print(format_table(report))
    return 0


def _trace(episode, beliefs: dict) -> dict[str, list]:
    """One traced episode and its `beliefs_on_episode` as JSON lists: per step `state` (where the env
    has one), `action` (what led there), `reward`, `reward_pred` (None at the first step), `value` and
    `return` (and `novelty`, for a model trained with it)."""
    out = {"action": episode["action"].tolist(), "reward": episode["reward"].tolist(),
           "reward_pred": [None if r != r else r for r in beliefs["reward_pred"].tolist()],
           "value": beliefs["value"].tolist(), "return": beliefs["return"].tolist()}
    if "novelty" in beliefs:
        out["novelty"] = beliefs["novelty"].tolist()
    if "state" in episode.keys():
        out["state"] = episode["state"].tolist()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
