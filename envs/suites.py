"""What each benchmark suite's protocol fixes, so that naming a task is enough.

    overrides, note = suite_defaults("dm_control/cartpole-swingup-v0")   # ({"action_repeat": 8}, None)
    overrides, note = suite_defaults("dm_control/hopper-hop-v0")         # ({"action_repeat": 2}, "...")

DeepMind Control from pixels is judged on the PlaNet benchmark (DrQ, CURL, MLR, PlayVirtual report
on it): six tasks, each with its own action repeat, 1000-frame episodes, camera 0, and a budget
counted in *frames* (simulator steps, repeats included). A task outside the six gets action
repeat 2, the convention of DrQ-v2 and TD-MPC2, which repeat every action twice on every task.
"""

from __future__ import annotations

from typing import Any

PLANET_ACTION_REPEAT: dict[str, int] = {
    "dm_control/cartpole-swingup-v0": 8,
    "dm_control/reacher-easy-v0": 4,
    "dm_control/cheetah-run-v0": 4,
    "dm_control/finger-spin-v0": 2,
    "dm_control/ball_in_cup-catch-v0": 4,
    "dm_control/walker-walk-v0": 2,
}
"""The PlaNet benchmark's six tasks and the action repeat each is reported at."""

DMC_ACTION_REPEAT = 2
"""The action repeat of any other DeepMind Control task (DrQ-v2's and TD-MPC2's convention)."""


def suite_defaults(env_id: str) -> tuple[dict[str, Any], str | None]:
    """The settings `env_id`'s suite protocol fixes (config keys -> values; empty outside a suite
    with a protocol), and a one-line note when the id is not one of the protocol's own tasks."""
    if not env_id.startswith("dm_control/"):
        return {}, None
    if env_id in PLANET_ACTION_REPEAT:
        return {"action_repeat": PLANET_ACTION_REPEAT[env_id]}, None
    return {"action_repeat": DMC_ACTION_REPEAT}, (
        f"note: {env_id} is not one of the PlaNet benchmark's six DeepMind Control tasks; it gets the "
        f"suite's default action_repeat={DMC_ACTION_REPEAT} (pass action_repeat= to choose another).")


__all__ = ["DMC_ACTION_REPEAT", "PLANET_ACTION_REPEAT", "suite_defaults"]
