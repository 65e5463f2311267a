"""Is a sync running? `status` asks two witnesses:

- **the run lock, on this machine** (workdir.py): a sync holding it describes itself there at
  each checkpoint (pid, start, checkpoint k of n, ETA, run id). Certain, but seen only where
  the sync's working folder is (the same `--pipelines-dir`, or dlt's default, on one machine).
- **the run history, anywhere** (history.py): each checkpoint's load carries the run's row as
  `running`, so a monitor on another machine reading a server warehouse sees the run's last
  checkpoint. A row still `running` is a sync going on elsewhere, or one that stopped without
  its final row (the next run of its pipeline marks it `interrupted`): the row cannot tell.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from ..errors import BusyError
from ..history import RUNNING
from ..windows import parse_timestamp
from ..workdir import describe_sync_progress, running_holder

LOCK, HISTORY = "run lock", "run history"


class SyncStarting(BusyError):
    """A sync runs that has committed nothing yet: there is no status to tell (exit 75)."""

    def __init__(self, sync: "RunningSync") -> None:
        super().__init__(
            f"Now {sync.describe()}, and it has committed nothing yet: ask again after its "
            "first checkpoint."
        )


@dataclass
class RunningSync:
    pipeline_name: str
    witness: str  # LOCK (certain, this machine) or HISTORY (its row says `running`)
    run_id: Optional[str] = None
    pid: Optional[int] = None
    started_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None  # the description's, or the row's last checkpoint
    progress: Optional[str] = None  # `checkpoint 3 of 9, ETA 3 min`
    checkpoints_committed: Optional[int] = None
    checkpoints_total: Optional[int] = None

    def describe(self) -> str:
        """One line: what runs, and how far it is."""
        if self.witness == LOCK:
            text = f"a sync of pipeline {self.pipeline_name} is running (pid {self.pid} on this machine"
            if self.started_at:
                text += f", started {_minute(self.started_at)} UTC"
            if self.progress:
                text += f"; {self.progress}"
                if self.updated_at and "ETA" in self.progress:
                    text += f" as of {self.updated_at.strftime('%H:%M:%S')} UTC"
            return text + ")"
        return (
            f"the run history shows a sync of pipeline {self.pipeline_name} as running: its last "
            f"checkpoint committed at {_minute(self.updated_at)} UTC ({self.checkpoints_committed} "
            f"of {self.checkpoints_total}); it runs elsewhere, or it stopped without its final row"
        )

    def as_json(self) -> Dict[str, Any]:
        return {
            "pipeline_name": self.pipeline_name,
            "seen_in": self.witness,
            "run_id": self.run_id,
            "pid": self.pid,
            "started_at": _iso(self.started_at),
            "updated_at": _iso(self.updated_at),
            "progress": self.progress,
            "checkpoints_committed": self.checkpoints_committed,
            "checkpoints_total": self.checkpoints_total,
        }


def running_here(pipeline_names: Iterable[str], pipelines_dir: Optional[str]) -> List[RunningSync]:
    """The syncs holding the run lock of these pipelines on this machine."""
    running = []
    for name in dict.fromkeys(pipeline_names):
        holder = running_holder(name, pipelines_dir)
        if holder and holder.get("activity", "sync") == "sync":
            running.append(
                RunningSync(
                    pipeline_name=name,
                    witness=LOCK,
                    run_id=holder.get("run_id"),
                    pid=holder.get("pid"),
                    started_at=_epoch(holder.get("since")),
                    updated_at=_epoch(holder.get("updated")),
                    progress=describe_sync_progress(holder),
                )
            )
    return running


def running_in_history(
    runs: Optional[List[Dict[str, Any]]], seen: Iterable[RunningSync] = ()
) -> List[RunningSync]:
    """The newest run of each pipeline when its row says `running`, unless the run lock already
    showed it (`seen`)."""
    known = {sync.pipeline_name for sync in seen}
    newest: Dict[str, Dict[str, Any]] = {}
    for run in runs or []:  # newest first
        newest.setdefault(str(run.get("pipeline_name")), run)
    return [
        RunningSync(
            pipeline_name=name,
            witness=HISTORY,
            run_id=run.get("run_id"),
            started_at=_parsed(run.get("started_at")),
            updated_at=_parsed(run.get("updated_at")),
            checkpoints_committed=run.get("checkpoints_committed"),
            checkpoints_total=run.get("checkpoints_total"),
        )
        for name, run in newest.items()
        if run.get("outcome") == RUNNING and name not in known
    ]


def _epoch(value: Any) -> Optional[datetime]:
    return datetime.fromtimestamp(float(value), timezone.utc) if value is not None else None


def _parsed(value: Any) -> Optional[datetime]:
    return parse_timestamp(value) if value is not None else None


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _minute(value: Optional[datetime]) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"
