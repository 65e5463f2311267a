"""What a user watching a long sync reads: requests done of planned, domains committed of
total, rows so far, an ETA from the keys' rate limits, and "waiting N s for the rate limit"
instead of silence.

On a terminal one live line is redrawn twice a second; off a terminal (CI, Airflow logs) a
plain line is written every `interval_s`; `quiet` writes nothing. Everything is read from the
run's counters by a background thread, so the run itself never waits for the display.
"""

import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, TextIO

TTY_REFRESH_S = 0.5
PLAIN_INTERVAL_S = 30.0


class SyncProgress:
    def __init__(
        self,
        out: Optional[TextIO] = None,
        mode: str = "auto",
        interval_s: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stderr
        if mode == "auto":
            mode = "tty" if getattr(self.out, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.interval_s = TTY_REFRESH_S if mode == "tty" else interval_s
        self.clock = clock
        self.context: Any = None
        self.result: Any = None
        self.checkpoints = 0
        self.checkpoint = 0
        self.started = clock()
        self._thread: Optional[threading.Thread] = None
        self._stopped = threading.Event()
        self._width = 0

    # --- what the run tells it ----------------------------------------------------------

    def start(self, context: Any, result: Any, checkpoints: int) -> None:
        """`result` is the run's SyncResult, which the run fills as checkpoints commit."""
        self.context = context
        self.result = result
        self.checkpoints = checkpoints
        self.started = self.clock()
        if self.mode == "quiet" or checkpoints == 0:
            return
        fresh = f" ({result.domains_fresh} synced within the resync interval are left out)" if result.domains_fresh else ""
        planned = result.planned_requests
        self._emit(
            f"Syncing {result.domains_total - result.domains_fresh} of {result.domains_total} "
            f"domain(s){fresh} in {checkpoints} checkpoint(s): about {planned} requests"
            f"{self._eta_text(planned, prefix=', ')}",
            final=True,
        )
        self._thread = threading.Thread(target=self._tick, name="aiclicks-progress", daemon=True)
        self._thread.start()

    def checkpoint_started(self, number: int) -> None:
        self.checkpoint = number

    def checkpoint_committed(self) -> None:
        if self.mode == "plain":
            self._emit(self.line(), final=True)

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.mode == "tty" and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
            self._width = 0

    # --- what it shows --------------------------------------------------------------------

    def facts(self) -> Dict[str, Any]:
        stats = self.context.stats if self.context is not None else None
        result = self.result
        requests = stats.requests if stats else 0
        return {
            "requests": requests,
            "planned_requests": max(result.planned_requests if result else 0, requests),
            "domains_committed": (result.domains_committed + result.domains_fresh) if result else 0,
            "domains_total": result.domains_total if result else 0,
            "rows": stats.rows_extracted if stats else 0,
            "rate_limited": stats.rate_limited if stats else 0,
            "waiting_s": self._waiting_s(),
            "elapsed_s": self.clock() - self.started,
        }

    def line(self) -> str:
        facts = self.facts()
        remaining = max(facts["planned_requests"] - facts["requests"], 0)
        parts = [
            f"checkpoint {self.checkpoint}/{self.checkpoints}",
            f"{facts['domains_committed']}/{facts['domains_total']} domains committed",
            f"{facts['requests']}/{facts['planned_requests']} requests",
            f"{facts['rows']:,} rows",
        ]
        eta = self._eta_text(remaining)
        if eta:
            parts.append(eta)
        if facts["rate_limited"]:
            parts.append(f"{facts['rate_limited']} x 429")
        line = "aiclicks: " + ", ".join(parts)
        if facts["waiting_s"]:
            line += f" - waiting {facts['waiting_s']:.0f} s for the rate limit"
        return line

    def _throttle(self) -> Any:
        session = getattr(self.context, "session", None)
        return getattr(session, "throttle", None)

    def _waiting_s(self) -> float:
        throttle = self._throttle()
        if throttle is None:
            return 0.0
        waiting = getattr(throttle, "waiting_s", None)
        if callable(waiting):
            return max(waiting(), 0.0)
        return 0.0

    def _eta_text(self, remaining_requests: int, prefix: str = "") -> str:
        """From the keys' rate limits when known (keypool.KeyPool.eta_s), else from the pace
        so far."""
        if remaining_requests <= 0:
            return ""
        keys = self._throttle()
        seconds = keys.eta_s(remaining_requests) if keys is not None else None
        rate = keys.requests_per_second() if keys is not None else None
        if seconds is None and self.context is not None and self.context.stats.requests:
            pace = (self.clock() - self.started) / self.context.stats.requests
            seconds = remaining_requests * pace
        if seconds is None:
            return ""
        text = f"ETA {_duration(seconds)}"
        if rate:
            text += f" at {rate * 60:.0f}/min"
        return prefix + text

    def _tick(self) -> None:
        last_plain = self.clock()
        while not self._stopped.wait(self.interval_s if self.mode == "tty" else 1.0):
            if self.mode == "tty":
                self._emit(self.line())
            elif self.clock() - last_plain >= self.interval_s:
                last_plain = self.clock()
                self._emit(self.line(), final=True)

    def _emit(self, text: str, final: bool = False) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "tty":
            padded = text.ljust(self._width)
            self.out.write("\r" + padded + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
