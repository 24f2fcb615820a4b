"""Stopping a run cleanly on Ctrl-C or a scheduler's SIGTERM: finish the step, save a checkpoint,
exit with one line.

    with StopOnSignal() as stop:
        while training:
            ...
            if stop.requested:
                save_checkpoint()
                raise Interrupted(stop.signal, step, folder)

The first SIGINT or SIGTERM only sets `requested`; the loop checkpoints at the end of the step it
is in. A second one acts as usual (KeyboardInterrupt, or the default termination), for a user who
does not want to wait for the checkpoint.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """A run stopped on a signal after saving a checkpoint; `exit_status` is 128 + the signal number."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None, unit: str = "environment step"):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_status = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name} at {unit} {step}; checkpoint saved: "
                         f"{checkpoint or 'none'}")


class StopOnSignal:
    """Within `with`, the first SIGINT/SIGTERM sets `requested` (and `signal`) instead of stopping the
    process. Outside the main thread (where Python cannot install handlers) it does nothing."""

    def __init__(self):
        self.requested = False
        self.signal = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested, self.signal = True, signum
        self._restore()  # a second signal acts as it normally would

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()


__all__ = ["Interrupted", "StopOnSignal"]
