"""Running dbt for `transform`: dbt's Python runner on the packaged project and profiles, its
work folder (`target/`, `logs/`), and where its output goes.

dbt's console is silent unless asked (`show_log`): `transform` prints a summary of its own. Every
line dbt would print (info and above, of every dbt command one transform runs) is written to
`<work>/logs/transform.log`, new each time and without colour codes; dbt keeps its own debug log
beside it (`dbt.log`, the SQL it ran; no colour codes either). Colour reaches the console on a
terminal only.
"""

import json
import re
import sys
from pathlib import Path
from typing import IO, Any, Callable, List, Mapping, Optional

PROJECT_DIR = Path(__file__).resolve().parent / "dbt"
PROFILES_DIR = PROJECT_DIR / "profiles"
LOG_FILE = "transform.log"
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_SHOWN_LEVELS = ("info", "warn", "error")


class DbtRuns:
    """The dbt commands of one transform, on one target, sharing a work folder and a log."""

    def __init__(self, runner: Any, target: str, work: Path, show_log: bool = False) -> None:
        self.runner = runner
        self.target = target
        self.work = work
        self.show_log = show_log
        self.log_path = work / "logs" / LOG_FILE
        self._log: Optional[IO[str]] = None

    def __enter__(self) -> "DbtRuns":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._log is not None:
            self._log.close()

    def invoke(
        self,
        command: List[str],
        dbt_vars: Mapping[str, Any],
        listen: Optional[Callable[[Any], None]] = None,
        console: bool = True,
    ) -> Any:
        """`dbt <command>` on the package; returns dbt's result. `listen` sees every event;
        `console=False` keeps dbt's console silent even with `show_log`."""
        shown = self.show_log and console
        colours = shown and sys.stdout.isatty()
        args = [
            *command,
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROFILES_DIR),
            "--target", self.target,
            "--target-path", str(self.work / "target"),
            "--log-path", str(self.work / "logs"),
            "--vars", json.dumps(dict(dbt_vars)),
            "--log-level", "info" if shown else "none",
            "--log-level-file", "debug",
            "--use-colors" if colours else "--no-use-colors",
            "--no-use-colors-file",
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
        ]
        callbacks = [self._write] + ([listen] if listen else [])
        return self.runner(callbacks=callbacks).invoke(args)

    def _write(self, event: Any) -> None:
        info = event.info
        if self._log is None or info.level not in _SHOWN_LEVELS or not info.msg:
            return
        at = info.ts.ToDatetime().strftime("%H:%M:%S")
        for line in _COLOUR.sub("", info.msg).splitlines() or [""]:
            self._log.write(f"{at}  {line}\n")
        self._log.flush()
