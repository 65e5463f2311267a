"""What a user watching a long sync reads: how far it is (percent of the planned requests),
requests done of planned, domains committed of those to sync, rows so far, an ETA from the
keys' rate limits, and "waiting N s for the rate limit" instead of silence.

On a terminal one live line is redrawn twice a second. It never wraps: it reads the
terminal's width at every redraw (so it follows a resize) and shortens itself to fit, first to
short labels, then by dropping the least needed facts (the checkpoint, the rows, the bar);
the percent, the ETA and the wait go last. A log line printed meanwhile clears it first. Off
a terminal (CI, Airflow logs) a plain line with every fact is written per checkpoint and every
`interval_s`, without control codes; `quiet` writes nothing. Everything is read from the
run's counters by a background thread, so the run itself never waits for the display.
"""

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

TTY_REFRESH_S = 0.5
PLAIN_INTERVAL_S = 30.0
FALLBACK_COLUMNS = 80
BAR_WIDTH = 20
CLEAR_LINE = "\r\x1b[K"  # back to the line's start, erase it


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
        self._lock = threading.RLock()  # a log line from a signal handler may come mid-redraw
        self._drawn = False  # a live line is on the screen
        self._log_filter: Optional[logging.Filter] = None

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
        where = f" into {result.where_text()}" if result.where else ""
        self._emit(
            f"Syncing {result.domains_total - result.domains_fresh} of {result.domains_total} "
            f"domain(s){fresh}{where} in {checkpoints} checkpoint(s): about {planned} requests"
            f"{self._eta_text(planned, prefix=', ')}",
            final=True,
        )
        if self.mode == "tty":
            self._clear_before_log_lines()
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
        if self._log_filter is not None:
            for handler in _log_handlers():
                handler.removeFilter(self._log_filter)
            self._log_filter = None
        self.clear_line()

    def clear_line(self) -> None:
        """Takes the live line off the screen (before a log line, and at the end)."""
        with self._lock:
            if self._drawn:
                self.out.write(CLEAR_LINE)
                self.out.flush()
                self._drawn = False

    # --- what it shows --------------------------------------------------------------------

    def facts(self) -> Dict[str, Any]:
        stats = self.context.stats if self.context is not None else None
        result = self.result
        requests = stats.requests if stats else 0
        planned = max(result.planned_requests if result else 0, requests)
        return {
            "requests": requests,
            "planned_requests": planned,
            "percent": int(100 * requests / planned) if planned else 0,
            "domains_committed": result.domains_committed if result else 0,
            # what this run syncs: those synced within the resync interval are left out
            "domains_to_sync": (result.domains_total - result.domains_fresh) if result else 0,
            "rows": stats.rows_extracted if stats else 0,
            "rate_limited": stats.rate_limited if stats else 0,
            "waiting_s": self._waiting_s(),
            "elapsed_s": self.clock() - self.started,
        }

    def pieces(self) -> List[Tuple[int, str, str]]:
        """The facts as (rank, full text, short text): rank 0 is dropped last when the line
        has to shorten."""
        facts = self.facts()
        remaining = max(facts["planned_requests"] - facts["requests"], 0)
        pieces = [
            (0, f"{facts['percent']}%", f"{facts['percent']}%"),
            (6, f"checkpoint {self.checkpoint}/{self.checkpoints}", f"cp {self.checkpoint}/{self.checkpoints}"),
            (4, f"{facts['domains_committed']}/{facts['domains_to_sync']} domains committed",
             f"{facts['domains_committed']}/{facts['domains_to_sync']} dom"),
            (3, f"{facts['requests']}/{facts['planned_requests']} requests",
             f"{facts['requests']}/{facts['planned_requests']} req"),
            (5, f"{facts['rows']:,} rows", f"{facts['rows']:,} rows"),
        ]
        eta = self._eta_text(remaining)
        if eta:
            pieces.append((1, eta, eta.split(" at ")[0]))
        if facts["rate_limited"]:
            pieces.append((4, f"{facts['rate_limited']} x 429", f"{facts['rate_limited']}x429"))
        if facts["waiting_s"] >= 0.5:
            waiting = f"{max(facts['waiting_s'], 1):.0f} s"
            pieces.append((2, f"waiting {waiting} for the rate limit", f"wait {waiting}"))
        return pieces

    def line(self) -> str:
        """The plain line: every fact, full words."""
        return "aiclicks: " + ", ".join(full for _, full, _ in self.pieces())

    def live_line(self, columns: int) -> str:
        """The terminal's line, at most `columns - 1` characters (the last column would wrap
        on some terminals): a bar and full words when there is room; else short labels, then
        no bar, then fewer facts, the least needed first."""
        width = max(columns - 1, 1)
        pieces = self.pieces()
        bar = self._bar(BAR_WIDTH) + " "
        for text in (bar + _joined(pieces, False), bar + _joined(pieces, True)):
            if len(text) <= width:
                return text
        text = _joined(pieces, short=True)
        while len(text) > width and len(pieces) > 1:
            pieces.remove(max(pieces, key=lambda piece: piece[0]))
            text = _joined(pieces, short=True)
        return text[:width]

    def _bar(self, width: int) -> str:
        filled = int(round(width * min(self.facts()["percent"], 100) / 100))
        unicode = "utf" in (getattr(self.out, "encoding", None) or "").lower()
        full, empty = ("\u2588", "\u2591") if unicode else ("#", "-")
        return full * filled + empty * (width - filled)

    def _columns(self) -> int:
        """The terminal's width now (it may have been resized since the last redraw)."""
        try:
            return os.get_terminal_size(self.out.fileno()).columns or FALLBACK_COLUMNS
        except (AttributeError, ValueError, OSError):  # not a real terminal (a test's stream)
            return int(os.environ.get("COLUMNS") or FALLBACK_COLUMNS)

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
                self._emit(self.live_line(self._columns()))
            elif self.clock() - last_plain >= self.interval_s:
                last_plain = self.clock()
                self._emit(self.line(), final=True)

    def _emit(self, text: str, final: bool = False) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            if self.mode == "tty":
                # a final line (the start line) stays; a live one is redrawn in place
                self.out.write(CLEAR_LINE + text + ("\n" if final else ""))
                self._drawn = not final
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def _clear_before_log_lines(self) -> None:
        """A log line (a warning while the run goes) would be glued to the live line: the
        handlers of the root logger and of dlt's own clear it first; the next redraw puts it
        back."""
        progress = self

        class ClearLiveLine(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                progress.clear_line()
                return True

        self._log_filter = ClearLiveLine()
        for handler in _log_handlers():
            handler.addFilter(self._log_filter)


def _log_handlers() -> List[logging.Handler]:
    return [*logging.getLogger().handlers, *logging.getLogger("dlt").handlers]


def _joined(pieces: List[Tuple[int, str, str]], short: bool) -> str:
    return ", ".join(short_text if short else full for _, full, short_text in pieces)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
