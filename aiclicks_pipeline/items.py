"""The items a resource hands dlt: a table's rows gathered across responses, as Arrow tables
typed as the endpoint table declares (settings.ENDPOINTS) where they fit it.

dlt's work per item (the table's schema, the contract) is done once for every item it is given,
and for every Arrow table: one item per response (thousands a sync) cost more than the rows in
them. So rows go to dlt in batches of up to BATCH_ROWS.

dlt writes an Arrow table into a parquet file as it is and skips its row-by-row normalizer
(flatten, coerce, ids), which took more CPU than anything else a sync does per row. The table
carries dlt's two columns, the load's id and the row ids, as dlt's normalizer would make them,
so that dlt's normalize step takes its file as it is (asked to add the row ids, dlt reads and
writes every file again, after the last response: pipeline.ARROW_SETTINGS). A list of text that
dlt would unnest into a child table (settings.CHILD_TABLES: a citation's `models`) goes to that
table as an Arrow table of its own, with the ids and list positions dlt's normalizer gives child
rows. Only rows that fit the declared tables go this way: a field the table does not declare
(the API adds fields without notice, docs/api-notes.md), a value of another type than declared,
or a child list that is not a list of text sends the response's rows to dlt as dicts, whose
normalizer adds the new column, a variant column or the child rows as before. Either way the
warehouse gets the same rows.
"""

import base64
import secrets
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from dlt.common.normalizers.json.helpers import get_nested_row_hash
from dlt.common.normalizers.utils import DLT_ID_LENGTH_BYTES
from dlt.common.schema.typing import C_DLT_ID, C_DLT_LOAD_ID
from dlt.common.schema.utils import dlt_id_column
from dlt.common.storages.load_package import load_package_state
from dlt.extract.hints import TResourceHints, make_hints

from .pandas_import import settle_pyarrow
from .settings import CHILD_TABLES, ENDPOINTS

# dlt's data types as Arrow types; what dlt's normalizer makes of the same values
ARROW_TYPES: Dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
# the Arrow types a column's values may arrive as (inferred from the Python values), each
# turned into the declared type as dlt's normalizer would turn it
ACCEPTED = {
    "text": (pa.types.is_string,),
    "bigint": (pa.types.is_int64,),
    "double": (pa.types.is_float64, pa.types.is_int64),
    "bool": (pa.types.is_boolean,),
    # ISO 8601 text (the API's), or datetimes and dates already parsed (the envelope's stamp)
    "timestamp": (pa.types.is_string, pa.types.is_timestamp),
    "date": (pa.types.is_string, pa.types.is_date32),
}


def rows_table(resource: str, rows: List[Dict[str, Any]]) -> Optional[pa.Table]:
    """`rows` as one Arrow table with the endpoint table's declared columns, in their order; None
    when a row has a field the table does not declare or a value that is not of its column's type."""
    spec = ENDPOINTS[resource]
    columns, key = spec["columns"], spec["primary_key"]
    declared = columns.keys()
    if not all(row.keys() <= declared for row in rows):
        return None
    arrays, fields = [], []
    for name, data_type in columns.items():
        array = typed_array([row.get(name) for row in rows], data_type)
        # a key is never null (dlt's not-null hint; what a null key does is dlt's to say)
        if array is None or (name in key and array.null_count):
            return None
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=name not in key))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# per endpoint, its lists that dlt unnests into child tables: {field: child table}
CHILD_LISTS: Dict[str, Dict[str, str]] = {}
for _child, _spec in CHILD_TABLES.items():
    CHILD_LISTS.setdefault(_spec["parent"], {})[_spec["field"]] = _child


class ChildEntries(NamedTuple):
    """A child table's rows before their parents have ids: each list entry, the position of its
    parent row among the parent table's rows, and its position in the list."""

    values: List[str]
    parents: List[int]
    positions: List[int]


def without_child_lists(
    lists: Dict[str, str], rows: List[Dict[str, Any]]
) -> Optional[Tuple[List[Dict[str, Any]], Dict[str, ChildEntries]]]:
    """`rows` without the `lists` ({field: child table}) dlt unnests into child tables, and
    their entries per child table; None when one is not a list of text (dlt's normalizer takes
    those rows)."""
    if not lists:
        return rows, {}
    children = {child: ChildEntries([], [], []) for child in lists.values()}
    kept = []
    for at, row in enumerate(rows):
        if lists.keys().isdisjoint(row):
            kept.append(row)
            continue
        row = dict(row)
        for field, child in lists.items():
            if field not in row:
                continue
            values = row.pop(field)
            if not isinstance(values, list) or not all(type(value) is str for value in values):
                return None
            entries = children[child]
            entries.values.extend(values)
            entries.parents.extend([at] * len(values))
            entries.positions.extend(range(len(values)))
        kept.append(row)
    return kept, children


# a child table's columns, in the order dlt's normalizer adds them, with its hints
CHILD_COLUMNS: Dict[str, Dict[str, Any]] = {
    "value": {"data_type": "text", "nullable": True},
    "_dlt_parent_id": {"data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_list_idx": {"data_type": "bigint", "nullable": False},
    C_DLT_ID: {"data_type": "text", "nullable": False, "unique": True, "row_key": True},
    "_dlt_root_id": {"data_type": "text", "nullable": False, "root_key": True},
}
CHILD_SCHEMA = pa.schema(
    [pa.field(name, ARROW_TYPES[hints["data_type"]], nullable=hints["nullable"]) for name, hints in CHILD_COLUMNS.items()]
)


def child_table(child: str, entries: ChildEntries, parent_ids: pa.Array) -> pa.Table:
    """A child table's rows as dlt's normalizer makes them from a list of values: the entry as
    `value`, the parent's `_dlt_id` as `_dlt_parent_id` and (for a merge) `_dlt_root_id`, the
    list position, and a row id hashed from the parent's id, the table and the position."""
    parents = parent_ids.take(pa.array(entries.parents, pa.int64()))
    ids = [
        get_nested_row_hash(parent, child, position)
        for parent, position in zip(parents.to_pylist(), entries.positions)
    ]
    columns = {
        "value": pa.array(entries.values, pa.string()),
        "_dlt_parent_id": parents,
        "_dlt_list_idx": pa.array(entries.positions, pa.int64()),
        C_DLT_ID: pa.array(ids, pa.string()),
        "_dlt_root_id": parents,
    }
    return pa.Table.from_arrays([columns[name] for name in CHILD_SCHEMA.names], schema=CHILD_SCHEMA)


def child_table_hints(child: str) -> TResourceHints:
    """The hints of a child table that gets Arrow tables of its own: a nested table of its
    parent, with the columns dlt's normalizer would give it and nothing of the parent's."""
    return make_hints(
        table_name=child,
        parent_table_name=CHILD_TABLES[child]["parent"],
        columns=[{"name": name, **hints} for name, hints in CHILD_COLUMNS.items()],
    )


def with_dlt_columns(table: pa.Table) -> pa.Table:
    """`table` with dlt's `_dlt_load_id` (the id of the load package being extracted; dlt can add
    it too, as it extracts the table, but then also hints a `precision` the column never had) and
    `_dlt_id` (a random id a row, as dlt's normalizer makes them), in the order dlt adds them."""
    load_id = load_package_state()["load_id"]
    table = table.append_column(
        pa.field(C_DLT_LOAD_ID, pa.string(), nullable=False),
        pa.array([load_id] * table.num_rows, pa.string()),
    )
    return table.append_column(pa.field(C_DLT_ID, pa.string(), nullable=False), dlt_ids(table.num_rows))


def dlt_id_hints() -> Any:
    """The hints dlt's normalizer gives `_dlt_id` (unique, row_key: a nested table's merge needs
    them on its root), given with each Arrow table rather than declared with the resource: so
    the column takes its place in the table when the first Arrow table comes, after what rows
    as dicts added before it, as it did when dlt's normalizer added it."""
    return dlt.mark.make_hints(columns={C_DLT_ID: dlt_id_column()})


def dlt_ids(count: int, length: int = DLT_ID_LENGTH_BYTES) -> pa.Array:
    """`count` row ids as dlt makes them (`generate_dlt_ids`: `length` random bytes each, base64
    without padding), built at once: dlt's loop over the ids took a third of a second a 100,000
    rows. Base64 turns each 3 bytes into 4 characters, so each id's bytes are spread to a multiple
    of 3 with zero bytes (the zero bits base64 pads with), encoded in one call, and each id's
    characters are taken back without the padding's."""
    padded = -(-length // 3) * 3
    encoded_width = padded // 3 * 4
    width = -(-length * 4 // 3)  # the characters of `length` bytes, without `=` padding
    random = secrets.token_bytes(count * length)
    spread = bytearray(count * padded)
    for at in range(length):
        spread[at::padded] = random[at::length]
    encoded = base64.b64encode(spread)
    text = bytearray(count * width)
    for at in range(width):
        text[at::width] = encoded[at::encoded_width]
    ids = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), count, [None, pa.py_buffer(text)])
    return ids.cast(pa.string())


def typed_array(values: List[Any], data_type: str) -> Optional[pa.Array]:
    """`values` as an Arrow array of dlt's `data_type`, or None when one of them is of another
    type. The values' own types are inferred first: casting straight to the declared type would
    convert what dlt keeps apart (a float 3.5 into a bigint 3)."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    target = ARROW_TYPES[data_type]
    if pa.types.is_null(array.type):
        return pa.nulls(len(values), target)
    if not any(accepts(array.type) for accepts in ACCEPTED[data_type]):
        return None
    if array.type == target:
        return array
    try:
        return pc.cast(array, target)
    except (pa.ArrowException, ValueError):
        return None  # text that is not an ISO 8601 timestamp or date


def prepare_arrow() -> None:
    """Has pyarrow settle, in this thread, before the extraction's threads build tables, whether
    pandas is there for its conversions (pandas_import.py: without importing it)."""
    settle_pyarrow()


# rows of one table held before they go to dlt: a few MB, a few items a checkpoint
BATCH_ROWS = 10_000
# responses' rows turned into one Arrow table together: each conversion has a fixed cost per
# column (a 100-domain sync's 901 responses of 65 rows took twice the CPU of the same rows
# 1,000 at a time), and the rows wait as dicts (a MB or two a table) until this many
CONVERT_ROWS = 1_000


class RowBatches:
    """One table's rows, gathered across responses and handed to dlt a batch at a time: an Arrow
    table (when `arrow` and the rows fit the declared table), with one for each of its child
    tables, or a list of dicts. Responses are converted a group at a time (CONVERT_ROWS); a group
    that does not fit is converted a response at a time, so that only the responses that do not
    fit go as dicts."""

    def __init__(self, resource: str, arrow: bool, children: bool = False, batch_rows: int = BATCH_ROWS,
                 convert_rows: int = CONVERT_ROWS) -> None:
        self.resource = resource
        self.arrow = arrow
        # the lists of the resource's child tables, when those get Arrow tables too
        self.lists = CHILD_LISTS.get(resource, {}) if arrow and children else {}
        self.batch_rows = batch_rows
        self.convert_rows = convert_rows
        self.pending: List[List[Dict[str, Any]]] = []  # responses' rows not converted yet
        self.pending_rows = 0
        self._reset()

    def _reset(self) -> None:
        self.tables: List[pa.Table] = []
        self.table_rows = 0
        self.children = {child: ChildEntries([], [], []) for child in self.lists.values()}
        self.dicts: List[Dict[str, Any]] = []
        self.count = 0

    def add(self, rows: List[Dict[str, Any]], flush: bool = False) -> Iterator[Any]:
        """Takes a response's rows; yields the batches that are full (all of them with `flush`)."""
        if self.arrow and rows:
            self.pending.append(rows)
            self.pending_rows += len(rows)
            if self.pending_rows >= self.convert_rows:
                self._convert_pending()
        else:
            self.dicts.extend(rows)
        self.count += len(rows)
        if flush or self.count >= self.batch_rows:
            yield from self.flush()

    def _convert_pending(self) -> None:
        pending = self.pending
        self.pending, self.pending_rows = [], 0
        if len(pending) > 1 and self._convert([row for rows in pending for row in rows]):
            return
        for rows in pending:
            if not self._convert(rows):
                self.dicts.extend(rows)

    def _convert(self, rows: List[Dict[str, Any]]) -> bool:
        """`rows` added as an Arrow table (with their child lists' entries); False when they do
        not fit the declared table."""
        split = without_child_lists(self.lists, rows)
        table = rows_table(self.resource, split[0]) if split else None
        if table is None:
            return False
        for child, entries in split[1].items():
            gathered = self.children[child]
            gathered.values.extend(entries.values)
            gathered.parents.extend(self.table_rows + at for at in entries.parents)
            gathered.positions.extend(entries.positions)
        self.tables.append(table)
        self.table_rows += table.num_rows
        return True

    def flush(self) -> Iterator[Any]:
        self._convert_pending()
        if self.tables:
            table = with_dlt_columns(pa.concat_tables(self.tables))
            yield dlt.mark.with_hints(table, dlt_id_hints())
            for child, entries in self.children.items():
                if entries.values:
                    yield dlt.mark.with_table_name(child_table(child, entries, table.column(C_DLT_ID)), child)
        if self.dicts:
            yield self.dicts
        self._reset()
