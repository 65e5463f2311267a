"""dlt's working folder of a pipeline (`~/.dlt/pipelines/<name>`, or `--pipelines-dir`): who may
use it, which warehouse it belongs to, and what an interrupted run left in it.

- **One run at a time.** A run holds an exclusive lock on `<pipelines dir>/<name>.lock` from
  before dlt opens the folder until it ends; a second run of the same pipeline fails at once
  with `AnotherSyncRunning` and touches nothing. The OS releases the lock when the process
  ends, however it ends (a `kill -9` leaves no stale lock). The lock file describes its
  holder in JSON (pid, host, folder, since, activity; a sync adds its checkpoint k of n, ETA
  and destination at each checkpoint), so that `status`, `reset` and `transform` on this
  machine can say what runs; `transform` queues behind it (`wait_s`). Another process looks
  (`running_holder`) without taking the lock from anyone.
- **One warehouse per folder.** dlt keeps every pipeline of a user in one folder, so two
  projects with the same pipeline name share it (and with it the cursors). The folder records
  the warehouse it was last used with (`aiclicks_destination` in dlt's local state); a run for
  another warehouse wipes the folder, which is only a cache, and dlt restores that warehouse's
  own state from the warehouse (`sync_destination`). A folder holding another warehouse's
  unfinished load is left alone and the run stops, saying where to finish it.
- **Leftovers.** A load that was interrupted is finished first (dlt's normalize and load
  resume it); an extraction that was interrupted committed nothing and its files are deleted.
  Loaded packages keep their metadata but not their data files (dlt's
  `load.delete_completed_jobs`), and only the newest `KEEP_LOADED_PACKAGES` are kept (pruned
  after every checkpoint), so disk use grows neither run after run nor checkpoint after
  checkpoint.
"""

import fcntl
import json
import logging
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import dlt
from dlt.pipeline.pipeline import Pipeline

from .duckdb_repair import repair_after_interruption
from .errors import AIclicksError, BusyError

logger = logging.getLogger("aiclicks_pipeline")

DESTINATION_KEY = "aiclicks_destination"
# dlt.attach(name) finds a DuckDB file through this local state value (dlt's own fallback for
# a database path that is not configured), so dlt's tools find the file this package wrote
DUCKDB_PATH_KEY = "duckdb_database"
KEEP_LOADED_PACKAGES = 20
# what dlt calls the folder of committed extract packages; its siblings are uncommitted ones
EXTRACTED_FOLDER = "extracted"


class AnotherSyncRunning(BusyError):
    """The pipeline's lock is held by another process."""

    def __init__(self, message: str, holder: Dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class ForeignPendingLoad(AIclicksError):
    """The working folder holds an unfinished load into another warehouse."""


def pipelines_dir_of(pipelines_dir: Optional[str]) -> str:
    """`pipelines_dir`, or dlt's default (`~/.dlt/pipelines`, `DLT_DATA_DIR`, ...)."""
    if pipelines_dir:
        return os.path.abspath(pipelines_dir)
    return os.path.abspath(dlt.current.run_context().get_data_entity("pipelines"))


_held: Dict[str, List[Any]] = {}  # lock path -> [depth, RunLock] of the locks this process holds
_held_guard = threading.Lock()

# the holder writes who it is right after it takes the lock: a process that met the lock an
# instant after (two runs started at once) waits that instant to name it
HOLDER_WAIT_S = 1.0
# how often a command queued behind the lock (`transform --wait`) tries it again
LOCK_POLL_S = 0.2
# the description is written in place, padded to this size, in one write: a reader sees the
# old or the new one (or, rarely, a torn one it reads again), never a mix of both lengths
HOLDER_SIZE = 2048
STARTING = "starting"  # a sync's phase before its first checkpoint (it plans)


class RunLock:
    """The run lock this process holds. `describe` tells other processes what the holder is
    doing (a sync: its checkpoint k of n, ETA, destination), read by `running_holder`."""

    def __init__(self, fd: int, holder: Dict[str, Any]) -> None:
        self.fd = fd
        self.holder = holder

    def describe(self, **facts: Any) -> None:
        self.holder.update(facts, updated=time.time())
        _write_holder(self.fd, self.holder)


def lock_path(pipeline_name: str, pipelines_dir: Optional[str] = None) -> str:
    return os.path.join(pipelines_dir_of(pipelines_dir), f"{pipeline_name}.lock")


@contextmanager
def pipeline_lock(
    pipeline_name: str,
    pipelines_dir: Optional[str] = None,
    activity: str = "sync",
    wait_s: float = 0.0,
    on_wait: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Iterator[RunLock]:
    """Holds the pipeline's run lock (re-entrant in one process) or raises AnotherSyncRunning.
    `activity` (a sync, a plan) is what another process that meets the lock is told runs.
    `wait_s`: how long to queue behind another holder first (`on_wait(holder)` is called once
    when the wait begins); 0 refuses at once."""
    path = lock_path(pipeline_name, pipelines_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _held_guard:
        nested = _held.get(path)
        if nested is not None:
            nested[0] += 1
    if nested is not None:
        try:
            yield nested[1]
        finally:
            with _held_guard:
                nested[0] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, pipeline_name, wait_s, on_wait)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cwd": os.getcwd(),
            "since": time.time(),
            "activity": activity,
        }
        lock = RunLock(fd, holder)
        _write_holder(fd, holder)
        with _held_guard:
            _held[path] = [1, lock]
        try:
            yield lock
        finally:
            with _held_guard:
                _held.pop(path, None)
            os.ftruncate(fd, 0)  # an unheld lock describes nothing
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(
    fd: int,
    pipeline_name: str,
    wait_s: float,
    on_wait: Optional[Callable[[Dict[str, Any]], None]],
) -> None:
    """Takes the lock on `fd`, queueing up to `wait_s` behind another holder."""
    started = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _read_holder(fd)
        waited = time.monotonic() - started
        if not holder.get("pid") and waited < HOLDER_WAIT_S:
            # a holder that has not written who it is yet, or `running_holder` looking in
            time.sleep(0.002)
            continue
        if waited >= wait_s:
            raise AnotherSyncRunning(
                f"Another {holder.get('activity', 'sync')} of pipeline {pipeline_name} is "
                f"running ({describe_holder(holder)})"
                + (f"; waited {waited:.0f} s" if wait_s else "")
                + "; try again when it ends.",
                holder,
            )
        if on_wait is not None and not told:
            on_wait(holder)
            told = True
        time.sleep(min(LOCK_POLL_S, max(wait_s - waited, 0.0)))


def running_holder(pipeline_name: str, pipelines_dir: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """What holds the pipeline's run lock on this machine now (a sync's pid, checkpoint, ETA:
    `RunLock.describe`), or None when nothing does or there is no such working folder here.
    It looks without taking the lock from anyone (a holder starting that instant retries)."""
    try:
        fd = os.open(lock_path(pipeline_name, pipelines_dir), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            deadline = time.monotonic() + HOLDER_WAIT_S
            holder = _read_holder(fd)
            while not holder.get("pid") and time.monotonic() < deadline:
                time.sleep(0.002)
                holder = _read_holder(fd)
            return holder
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(holder: Dict[str, Any]) -> str:
    """`pid 4242, in /home/me/project; checkpoint 3 of 9, ETA 3 min`: who holds the lock and,
    for a sync, how far it is."""
    text = f"pid {holder.get('pid') or 'unknown'}"
    if holder.get("cwd"):
        text += f", in {holder['cwd']}"
    progress = describe_sync_progress(holder)
    return f"{text}; {progress}" if progress else text


def describe_sync_progress(holder: Dict[str, Any]) -> Optional[str]:
    """`checkpoint 3 of 9, ETA 3 min` (or `before its first checkpoint`) of a sync's lock
    description; None when it does not say."""
    if holder.get("checkpoints") is None:
        return "before its first checkpoint" if holder.get("phase") == STARTING else None
    text = f"checkpoint {holder.get('checkpoint') or 0} of {holder['checkpoints']}"
    return f"{text}, ETA {holder['eta']}" if holder.get("eta") else text


def _write_holder(fd: int, holder: Dict[str, Any]) -> None:
    data = json.dumps(holder).encode().ljust(HOLDER_SIZE)
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))  # nothing of a longer description before stays behind it


def _read_holder(fd: int) -> Dict[str, Any]:
    """The lock file's description ({} when empty, or torn by a write under way)."""
    try:
        return json.loads(os.pread(fd, 4 * HOLDER_SIZE, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def destination_identity(pipeline: Pipeline) -> Dict[str, Any]:
    """What tells one warehouse from another: the destination, where its data lives (a DuckDB
    file's absolute path, a server's host and database: dlt's `data_location`) and the dataset.
    Never a secret: no key, no password."""
    identity: Dict[str, Any] = {
        "destination": pipeline.destination.destination_type if pipeline.destination else None,
        "dataset": pipeline.dataset_name,
    }
    try:
        config = pipeline.destination_client().config
        identity["location"] = str(config.data_location())
    except Exception:  # no credentials yet: the destination and dataset still tell it apart
        identity["location"] = None
    return identity


def describe_identity(identity: Dict[str, Any]) -> str:
    location = identity.get("location") or identity.get("destination")
    return f"{location} (dataset {identity.get('dataset')})"


def bind_to_destination(pipeline: Pipeline) -> Pipeline:
    """Makes sure the working folder belongs to `pipeline`'s warehouse; returns the pipeline
    to use (a fresh one when the folder belonged to another warehouse)."""
    identity = destination_identity(pipeline)
    try:
        bound = pipeline.get_local_state_val(DESTINATION_KEY)
    except KeyError:
        bound = None
    if bound and bound != identity:
        if pipeline.has_pending_data:
            raise ForeignPendingLoad(
                f"The working folder of pipeline {pipeline.pipeline_name} "
                f"({pipeline.working_dir}) holds an unfinished load into "
                f"{describe_identity(bound)}, not {describe_identity(identity)}. Run the sync "
                "for that warehouse to finish it, or give this project its own pipeline "
                "(--pipeline-name or --pipelines-dir)."
            )
        logger.warning(
            "Pipeline %s was last used with %s; this run uses %s: its local state is set "
            "aside and restored from this warehouse.",
            pipeline.pipeline_name, describe_identity(bound), describe_identity(identity),
        )
        pipeline = pipeline.drop()
    if bound != identity:
        pipeline.set_local_state_val(DESTINATION_KEY, identity)
    return pipeline


def sync_with_destination(pipeline: Pipeline) -> None:
    """dlt's `sync_destination` (a newer state in the warehouse replaces the local one),
    keeping what this module records in the local state: dlt wipes the working folder, local
    state and all, when the dataset is gone (a deleted DuckDB file), and the next run would
    not know its warehouse, nor `dlt.attach` the file."""
    kept = {}
    for key in (DESTINATION_KEY, DUCKDB_PATH_KEY):
        try:
            kept[key] = pipeline.get_local_state_val(key)
        except KeyError:
            pass
    try:
        pipeline.sync_destination()
    finally:
        for key, value in kept.items():
            _set_local_state(pipeline, key, value)


def remember_duckdb_path(pipeline: Pipeline, path: str) -> None:
    _set_local_state(pipeline, DUCKDB_PATH_KEY, path)


def _set_local_state(pipeline: Pipeline, key: str, value: Any) -> None:
    """Sets a local state value, writing the state file only when it changes."""
    try:
        current = pipeline.get_local_state_val(key)
    except KeyError:
        current = None
    if current != value:
        pipeline.set_local_state_val(key, value)


def discard_interrupted_extracts(pipeline: Pipeline) -> int:
    """Deletes what interrupted extractions left (never committed, never loadable); returns the
    bytes freed. Only safe under the pipeline's lock: a running extract writes there too."""
    normalize_dir = Path(pipeline.working_dir) / "normalize"
    freed = 0
    if not normalize_dir.is_dir():
        return 0
    for folder in normalize_dir.iterdir():
        if folder.is_dir() and folder.name != EXTRACTED_FOLDER:
            freed += _size(folder)
            shutil.rmtree(folder, ignore_errors=True)
    return freed


def discard_unrecorded_extracts(pipeline: Pipeline) -> List[str]:
    """Deletes extracted packages the working folder's state never recorded; returns their ids.

    dlt commits an extracted package (data, and the pipeline state it moves to) a moment
    before it saves the pipeline's local state and schema. A run killed in between leaves a
    package whose state the folder does not know: dlt cannot normalize it (its schema is not
    the pipeline's), and loading it would move cursors the folder never saw. Nothing of it
    reached the warehouse, so dropping it is exact: that checkpoint simply did not happen.
    """
    pending = pipeline.list_extracted_load_packages()
    if not pending:
        return []
    storage = pipeline._get_normalize_storage().extracted_packages  # dlt's own package store
    known_hash = pipeline.state.get("_version_hash")
    dropped = []
    for load_id in pending:
        package_state = storage.get_load_package_state(load_id).get("pipeline_state") or {}
        recorded = not package_state or package_state.get("version_hash") == known_hash
        if recorded and pipeline.default_schema_name:
            continue
        storage.delete_package(load_id)
        dropped.append(load_id)
    if dropped:
        logger.warning(
            "Discarded %d extracted package(s) an interrupted run committed without recording "
            "them (nothing of them was loaded): %s", len(dropped), ", ".join(dropped),
        )
    return dropped


def finish_pending_loads(pipeline: Pipeline) -> List[str]:
    """Normalizes and loads what an interrupted run extracted; returns the finished load ids.
    dlt's own resume: a partly loaded package continues where it stopped. First, a DuckDB file
    a killed run left with a half-written block is repaired (duckdb_repair.py)."""
    repair_after_interruption(pipeline)
    discard_unrecorded_extracts(pipeline)
    if not pipeline.has_pending_data:
        return []
    pending = list(pipeline.list_extracted_load_packages()) + list(
        pipeline.list_normalized_load_packages()
    )
    logger.warning(
        "Finishing %d load package(s) an interrupted run left: %s", len(pending), ", ".join(pending)
    )
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    if pipeline.list_normalized_load_packages():
        pipeline.load()
    return pending


def prune_loaded_packages(pipeline: Pipeline, keep: Optional[int] = None) -> int:
    """Deletes all but the newest `keep` (KEEP_LOADED_PACKAGES) loaded packages of the working
    folder; returns how many."""
    keep = KEEP_LOADED_PACKAGES if keep is None else keep
    loaded_dir = Path(pipeline.working_dir) / "load" / "loaded"
    if not loaded_dir.is_dir():
        return 0
    packages = sorted((p for p in loaded_dir.iterdir() if p.is_dir()), key=lambda p: p.name)
    old = packages[:-keep] if keep > 0 else packages
    for package in old:
        shutil.rmtree(package, ignore_errors=True)
    return len(old)


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total
