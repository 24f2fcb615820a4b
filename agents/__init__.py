"""Planning agents that act in a world model's latent space, and what trains and measures them.

- the agent itself, at this level: `agent` (frame history -> encode -> plan -> act), `planners`
  (MPPI and CEM behind one interface), `base` (the contract the loop relies on), `random` (the
  seed-phase policy), `episodes` (a run's environments from its config, and whole episodes played
  in them: evaluation returns, recorded episodes);
- `agents.analysis`: measuring agents and models (probe, imagined rollouts, robustness, curves,
  benchmark tables); imports the agent, never `agents.training`;
- `agents.training`: assembling a run from its config (`assembly`), the online loop, offline
  pretraining, run folders; imports the agent and `agents.analysis`.
"""
