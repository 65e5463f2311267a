"""A DuckDB file that a killed process left with a half-written block: found, and repaired.

At every checkpoint DuckDB rewrites its metadata blocks in place. Each 256 KB block holds 64
pieces of the catalog and of the tables' row-group pointers, and the checkpoint writes new
pieces into the block's free slots. The pieces the file's header still refers to stay as
they are, and the block's first 8 bytes are a checksum of all of it. Linux can stop the write
of a process being killed between two 4 KB pages. A SIGKILL during that write then leaves the
block half new, half old: every piece the header refers to is intact, but the checksum no
longer matches, and DuckDB will not open the file ("Corrupt database file: computed checksum C
does not match stored checksum S in block at location L"). The header and the write-ahead log
are as they were before that checkpoint, so nothing committed is lost. It is rare (a kill must
land inside one 256 KB write), but the kill sweep of tests/test_kill.py met it in a CI run.

So a run that follows one that may have been killed while writing the file first opens it
(read-only) and lists every table's storage, which reads every metadata block. A block that
DuckDB names is repaired by storing the checksum of what it holds now, and only when that is
the very checksum DuckDB computed from the same bytes (so the layout and the algorithm are the
ones assumed here). Then the file is checked again. Anything else is left alone and reported.
"""

import fcntl
import logging
import os
import re
import struct
from pathlib import Path
from typing import Any, List, NamedTuple, Optional

from .destinations import WarehouseError, destination_kind

logger = logging.getLogger("aiclicks_pipeline")

# DuckDB's storage layout (1.x, unencrypted): three 4 KB headers, then blocks of 256 KB, each
# starting with the 8-byte checksum of the rest
HEADERS_SIZE = 3 * 4096
BLOCK_SIZE = 262144
CHECKSUM_SIZE = 8
# DuckDB's checksum of a block: 5381, XORed with each 8-byte word times this constant
_SEED = 5381
_MULTIPLIER = 0xBF58476D1CE4E5B9
_MASK = (1 << 64) - 1
# each repair fixes a block DuckDB names; a kill tears the one write in progress
MAX_REPAIRS = 8

TORN_BLOCK = re.compile(
    r"Corrupt database file: computed checksum (?P<computed>\d+) does not match stored checksum "
    r"(?P<stored>\d+) in block at location (?P<location>\d+)"
)


class TornBlock(NamedTuple):
    location: int  # byte offset of the block in the file
    computed: int  # DuckDB's checksum of the block's bytes
    stored: int  # the checksum the block's first 8 bytes hold


class CorruptWarehouseError(WarehouseError):
    """A DuckDB file that DuckDB refuses to read, which was not left so by a killed write."""


def torn_block(error: Any) -> Optional[TornBlock]:
    """The block a DuckDB error says has a wrong checksum, else None."""
    match = TORN_BLOCK.search(str(error))
    if match is None:
        return None
    return TornBlock(int(match["location"]), int(match["computed"]), int(match["stored"]))


def block_checksum(payload: bytes) -> int:
    """DuckDB's checksum of a block's bytes after its own checksum."""
    if len(payload) % 8:
        raise ValueError("a block's payload is a whole number of 8-byte words")
    result = _SEED
    for (word,) in struct.iter_unpack("<Q", payload):
        result ^= (word * _MULTIPLIER) & _MASK
    return result


def store_checksum(path: Path, block: TornBlock) -> bool:
    """Stores the checksum of what `block` holds now in its first 8 bytes, when that checksum
    is the one DuckDB computed (`block.computed`). Under DuckDB's own lock on the file: no
    process may have it open meanwhile. Returns whether it did."""
    if block.location < HEADERS_SIZE or (block.location - HEADERS_SIZE) % BLOCK_SIZE:
        return False
    with open(path, "r+b") as file:
        try:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # open elsewhere: not ours to change now
        file.seek(block.location)
        data = file.read(BLOCK_SIZE)
        if len(data) != BLOCK_SIZE:
            return False
        (stored,) = struct.unpack_from("<Q", data)
        if stored != block.stored or block_checksum(data[CHECKSUM_SIZE:]) != block.computed:
            return False
        file.seek(block.location)
        file.write(struct.pack("<Q", block.computed))
        file.flush()
        os.fsync(file.fileno())
    return True


def read_every_block_of_metadata(path: Path) -> None:
    """Opens the file read-only (its write-ahead log replayed in memory, nothing written) and
    lists the storage of every table, which reads every metadata block; raises DuckDB's error."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute(
            "select schema_name, table_name from duckdb_tables() where not temporary"
        ).fetchall()
        for schema, table in tables:
            name = '"%s"."%s"' % (schema.replace('"', '""'), table.replace('"', '""'))
            # a literal, not a parameter: DuckDB imports pandas to bind one (0.3 s)
            literal = "'%s'" % name.replace("'", "''")
            connection.execute(f"select count(*) from pragma_storage_info({literal})").fetchone()


def repair_torn_blocks(path: Path) -> List[int]:
    """Checks a DuckDB file and repairs the blocks a killed write left half-written (module
    docstring); returns their locations. Raises CorruptWarehouseError for what it cannot
    repair."""
    import duckdb

    repaired: List[int] = []
    for _ in range(MAX_REPAIRS + 1):
        try:
            read_every_block_of_metadata(path)
            return repaired
        except duckdb.Error as exc:
            block = torn_block(exc)
            if block is None:
                if repaired:  # what the repair uncovered
                    raise CorruptWarehouseError(f"Cannot read the DuckDB file {path}: {exc}") from None
                return repaired  # not this module's: the run meets it and says so
            if block.location in repaired or not store_checksum(path, block):
                raise CorruptWarehouseError(
                    f"The DuckDB file {path} has a corrupt block at byte {block.location} that is "
                    "not a block a killed write left half-written: restore the file from a "
                    "backup, or load the data again into a new file (`aiclicks-pipeline run "
                    "--full-refresh`)"
                ) from None
            repaired.append(block.location)
            logger.warning(
                "Repaired the DuckDB file %s: its block at byte %d was half-written by a run "
                "killed while DuckDB rewrote it (the data it holds was intact)",
                path, block.location,
            )
    raise CorruptWarehouseError(f"The DuckDB file {path} has more than {MAX_REPAIRS} corrupt blocks")


def repair_after_interruption(pipeline: Any) -> List[int]:
    """Before a run writes the DuckDB file of `pipeline`: when the last run may have been killed
    while writing it (a load package left pending, or DuckDB's write-ahead log left beside the
    file, which a writer's clean close removes), checks the file and repairs a half-written
    block; returns the repaired blocks' locations."""
    if destination_kind(pipeline.destination) != "duckdb":
        return []
    # the credentials as dlt resolves them (no connection opened): about 10 ms
    credentials = pipeline.destination_client().config.credentials
    database = getattr(credentials, "database", None)
    if not isinstance(database, str) or database == ":memory:":
        return []
    path = Path(database)
    if not path.is_file():
        return []
    if not (pipeline.has_pending_data or Path(f"{path}.wal").exists()):
        return []
    return repair_torn_blocks(path)


__all__ = [
    "CorruptWarehouseError", "TornBlock", "block_checksum", "repair_after_interruption",
    "repair_torn_blocks", "store_checksum", "torn_block",
]
