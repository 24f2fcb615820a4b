"""Training: a run assembled from its config (`assembly`), the online loop (`loop`, `collect`,
`session`, `distributed`), offline pretraining (`pretrain`), encoders reused from other runs
(`pretrained`) and run folders with their checkpoints and metrics log (`runs`).

Imports the agent (`agents.agent`, `agents.planners`, ...), `agents.analysis` (to measure a run
while it trains: probe, imagined videos, plots), `worldmodel` and `envs`; nothing imports it but the
scripts.
"""
