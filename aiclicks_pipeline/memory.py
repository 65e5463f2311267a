"""Keeps a long sync's memory flat: the C allocator, not Python, is what grew.

A sync in checkpoints runs dlt's extract, normalize and load once per checkpoint, and each
step starts thread pools of its own. glibc gives each new thread an arena of its own (up to 8
per core) and frees little of them back, so RSS crept up by a few MB a checkpoint although
DuckDB's connection is closed after every load. At 300 sandbox domains (24 checkpoints) the
RSS between checkpoints climbed from 128 to 207 MB; with two arenas (what
`MALLOC_ARENA_MAX=2` does) it stayed at 150-170 MB, the sync as fast (bench/RESULTS.md,
Memory).

Only on glibc (Linux); elsewhere, and where the user set `MALLOC_ARENA_MAX`, nothing changes.

Arrow allocates through an allocator of its own (mimalloc or jemalloc in pyarrow's wheels),
which kept what an extraction's tables freed: 50-100 MB resident under each load step. It is
handed back with glibc's free pages (2,000 sandbox domains peaked at 405 MB instead of 504;
bench/RESULTS.md, Memory).
"""

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from typing import Any, Optional

logger = logging.getLogger("aiclicks_pipeline")

# mallopt's parameter for the arena cap (glibc's malloc.h)
M_ARENA_MAX = -8
ARENAS = 2


@functools.lru_cache(maxsize=None)
def _glibc() -> Optional[Any]:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def cap_malloc_arenas() -> None:
    """At most ARENAS malloc arenas for the threads started from now on (the process's own
    setting when the user gave one)."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return
    if not libc.mallopt(M_ARENA_MAX, ARENAS):
        logger.debug("mallopt(M_ARENA_MAX) refused; memory may grow with the checkpoints")


def release_free_memory() -> None:
    """Hands the allocators' free pages back to the system (after a checkpoint: its data is in
    the warehouse and its buffers are free): glibc's, and Arrow's where pyarrow is in use
    (not imported for it)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
