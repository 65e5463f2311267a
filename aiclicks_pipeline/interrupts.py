"""Stopping a sync on SIGINT (Ctrl-C) or SIGTERM (a scheduler's timeout) within seconds.

The first signal asks the run to stop: the throttle and retry waits wake up and raise, no new
request starts, dlt's own steps see its signal flag (extraction stops, a load drains its
running jobs), and the run ends with what its committed checkpoints hold. Nothing of the
checkpoint in flight is committed, so nothing is half-written: the next run redoes it.

Requests already on the wire cannot be cut from another thread, so a watchdog bounds the
wait: if the process has not ended `GRACE_S` after the signal, it prints the same closing
line and exits hard. That is as safe as a `kill -9`, which every step survives (the next run
finishes or discards what is left). A second signal exits hard at once.
"""

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional

from dlt.common.runtime import signals as dlt_signals

GRACE_S = 2.5
EXIT_CODES: Dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    """What a signal handler sets and the run reads: which signal, and a way to wake waiters."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: Optional[int] = None
        self._wakers: list = []

    def on_stop(self, wake: Callable[[], None]) -> None:
        """`wake` is called (from the signal handler) when a stop is requested."""
        self._wakers.append(wake)

    def request(self, signum: int) -> None:
        self.signum = self.signum or signum
        self.event.set()
        for wake in list(self._wakers):
            wake()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum or signal.SIGINT, 130)


@contextmanager
def stop_on_signals(
    stop: StopRequest, farewell: Callable[[], str] = lambda: "", grace_s: float = GRACE_S
) -> Iterator[StopRequest]:
    """Installs SIGINT/SIGTERM handlers for the duration (main thread only; elsewhere a no-op).

    `farewell()` gives the line printed when the watchdog has to end the process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def hard_exit() -> None:
        try:
            message = farewell()
            if message:
                os.write(sys.stderr.fileno(), (message + "\n").encode())
        finally:
            os._exit(stop.exit_code)

    def handler(signum: int, frame: object) -> None:
        if stop.requested:  # a second signal: the user insists
            hard_exit()
        stop.request(signum)
        dlt_signals.set_received_signal(signum)  # dlt's extract and load loops check it
        dlt_signals.wake_all()
        watchdog = threading.Timer(grace_s, hard_exit)
        watchdog.daemon = True
        watchdog.start()

    previous = {sig: signal.getsignal(sig) for sig in EXIT_CODES}
    for sig in EXIT_CODES:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
