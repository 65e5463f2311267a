"""Keeps a long sync's memory flat: the C allocator, not Python, is what grew.

A sync in checkpoints runs dlt's extract, normalize and load once per checkpoint, and each
step starts thread pools of its own. glibc gives each new thread an arena of its own (up to 8
per core) and frees little of them back, so RSS crept up by a few MB a checkpoint: a first
sync of 2,000 sandbox domains (154 checkpoints) ended its extraction at 720 MB and peaked at
950 MB, while the Python objects alive after a checkpoint stayed under 4 MB (tracemalloc) and
DuckDB's connection is closed after every load. With two arenas (what `MALLOC_ARENA_MAX=2`
does) and the freed heap handed back after each checkpoint, RSS stays near the size of one
checkpoint at no measurable cost in speed (bench/RESULTS.md, Memory).

Only on glibc (Linux); elsewhere, and where the user set `MALLOC_ARENA_MAX`, nothing changes.
"""

import ctypes
import ctypes.util
import logging
import os
from typing import Any, Optional

logger = logging.getLogger("aiclicks_pipeline")

# mallopt's parameter for the arena cap (glibc's malloc.h)
M_ARENA_MAX = -8
ARENAS = 2

_libc: Optional[Any] = None
_looked_up = False


def _glibc() -> Optional[Any]:
    global _libc, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                _libc = libc
        except OSError:
            _libc = None
    return _libc


def cap_malloc_arenas() -> None:
    """At most ARENAS malloc arenas for the threads started from now on (the process's own
    setting when the user gave one)."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return
    if not libc.mallopt(M_ARENA_MAX, ARENAS):
        logger.debug("mallopt(M_ARENA_MAX) refused; memory may grow with the checkpoints")


def release_free_memory() -> None:
    """Hands the allocator's free pages back to the system (after a checkpoint: its data is in
    the warehouse and its buffers are free)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
