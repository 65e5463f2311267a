"""duckdb_repair: a DuckDB file left with a half-written metadata block by a kill during a
checkpoint is repaired, and what it held is read back unchanged; anything else is left alone."""

import shutil
import struct
from pathlib import Path

import duckdb
import pytest

from aiclicks_pipeline.duckdb_repair import (
    BLOCK_SIZE, CHECKSUM_SIZE, HEADERS_SIZE, CorruptWarehouseError, TornBlock, block_checksum,
    repair_torn_blocks, store_checksum, torn_block,
)

from ..support import tear_the_next_checkpoint


def contents(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute("select table_name from duckdb_tables()").fetchall()
        return {
            table: sorted(connection.execute(f"select * from {table}").fetchall())
            for (table,) in tables
        }


@pytest.fixture(scope="module")
def killed_before_its_checkpoint(tmp_path_factory) -> Path:
    """A DuckDB file checkpointed once, then more commits in its write-ahead log only: what a
    process killed before its next checkpoint leaves (the file copied while it is open)."""
    folder = tmp_path_factory.mktemp("duckdb")
    path = folder / "live.duckdb"
    connection = duckdb.connect(str(path))
    for table in ("a", "b", "c"):
        connection.execute(f"create table {table} as select range as n, 'row ' || range as s from range(5000)")
    connection.execute("checkpoint")
    connection.execute("delete from a where n % 3 = 0")
    connection.execute("insert into b select range, 'later' from range(100)")
    connection.execute("create table d as select 42 as answer")
    shutil.copy(path, folder / "killed.duckdb")
    shutil.copy(f"{path}.wal", folder / "killed.duckdb.wal")
    connection.close()
    return folder / "killed.duckdb"


def copy_of(path: Path, folder: Path) -> Path:
    copy = folder / path.name
    shutil.copy(path, copy)
    shutil.copy(f"{path}.wal", f"{copy}.wal")
    return copy


def test_the_checksum_is_duckdbs(killed_before_its_checkpoint):
    data = killed_before_its_checkpoint.read_bytes()
    blocks = range(HEADERS_SIZE, len(data), BLOCK_SIZE)
    assert len(blocks) >= 2
    for location in blocks:
        block = data[location:location + BLOCK_SIZE]
        if any(block):  # a block the file has not used yet is zeros
            assert struct.unpack_from("<Q", block)[0] == block_checksum(block[CHECKSUM_SIZE:])


def test_duckdbs_message_names_the_block():
    message = ("IO Error: Corrupt database file: computed checksum 11319691961503229997 does not "
               "match stored checksum 13089220815888762584 in block at location 274432")
    assert torn_block(duckdb.IOException(message)) == TornBlock(
        274432, 11319691961503229997, 13089220815888762584
    )
    assert torn_block("IO Error: Could not set lock on file") is None


@pytest.mark.parametrize("pages", range(1, BLOCK_SIZE // 4096))
def test_a_kill_after_any_page_of_a_metadata_blocks_write_is_repaired(
    killed_before_its_checkpoint, tmp_path, pages
):
    """Every moment of the write a kill can stop (between two pages): DuckDB refuses the file
    (unless the pages not written yet were the same as before: the block's last pages are
    unused), the repair makes it readable, and it holds exactly what the killed process had
    committed."""
    committed = contents(killed_before_its_checkpoint)
    path = copy_of(killed_before_its_checkpoint, tmp_path)
    location = tear_the_next_checkpoint(path, pages)
    try:
        duckdb.connect(str(path), read_only=True).close()
        refused = False
    except duckdb.IOException as exc:
        assert torn_block(exc).location == location
        refused = True
    assert refused or pages > 1

    assert repair_torn_blocks(path) == ([location] if refused else [])

    assert contents(path) == committed
    assert repair_torn_blocks(path) == []


def test_a_block_changed_since_duckdb_read_it_is_left_alone(killed_before_its_checkpoint, tmp_path):
    path = copy_of(killed_before_its_checkpoint, tmp_path)
    location = tear_the_next_checkpoint(path, 1)
    with pytest.raises(duckdb.IOException) as refused:
        duckdb.connect(str(path), read_only=True).close()
    block = torn_block(refused.value)
    assert block.location == location
    unchanged = path.read_bytes()

    assert not store_checksum(path, block._replace(computed=block.computed ^ 1))
    assert not store_checksum(path, block._replace(location=location + 4096))
    assert path.read_bytes() == unchanged


def test_a_block_it_cannot_repair_is_a_clear_error(killed_before_its_checkpoint, tmp_path, monkeypatch):
    path = copy_of(killed_before_its_checkpoint, tmp_path)
    location = tear_the_next_checkpoint(path, 1)
    monkeypatch.setattr("aiclicks_pipeline.duckdb_repair.store_checksum", lambda *_: False)
    with pytest.raises(CorruptWarehouseError, match=f"corrupt block at byte {location} .*--full-refresh"):
        repair_torn_blocks(path)


def test_a_file_duckdb_reads_is_not_touched(killed_before_its_checkpoint, tmp_path):
    path = copy_of(killed_before_its_checkpoint, tmp_path)
    data = path.read_bytes()
    assert repair_torn_blocks(path) == []
    assert path.read_bytes() == data
