"""A sync that does not import pandas: 0.2-0.4 s and 20-35 MB of every sync process (measured
against the commit before it, 10-500 sandbox domains in fresh processes).

pandas is not a dependency of this package (the dashboard's and BigQuery's extras bring it).
Where it is installed, two libraries import it for questions a sync never needs answered:
- pyarrow, the first time it converts Python values (`pa.array`), only to ask whether they are
  pandas objects (its lazy `_PandasAPIShim`);
- DuckDB's Python client, to bind any parameter of a statement: dlt binds each DuckDB setting
  (`SET GLOBAL threads = ?`) and the values of its own tables' queries (`_dlt_loads`,
  `_dlt_version`, the state), and DuckDB tries again at every statement until it has pandas.

So, with DuckDB, dlt's settings and its queries' parameters go into the SQL as literals
(`sql_literal`: a string's quotes doubled, every value cast to the type DuckDB binds it as);
a value of another type is bound as before. And pyarrow asks its question once with pandas
hidden from the asking thread (`settle_pyarrow`): pyarrow takes pandas as absent for it, and a
pyarrow function that needs pandas (`to_pandas`, `Table.from_pandas`) still imports it as
before. When pandas is imported later (by anyone), pyarrow is asked to look again, so that its
other checks (`pa.array` of a Series, `pa.record_batch` of a DataFrame) answer as in a process
that never ran a sync. Where pandas is imported already, nothing is hidden (it costs nothing).
"""

import importlib.abc
import importlib.util
import math
import sys
import threading
from datetime import date, datetime
from typing import Any, Dict, Optional, Sequence

_PATCHED = "_aiclicks_literal_parameters"
PLACEHOLDER = "%s"  # dlt's, which it turns into DuckDB's `?`


def sql_literal(value: Any) -> Optional[str]:
    """`value` as a DuckDB literal of the type DuckDB binds it as; None for a type not written
    here (NaN and infinities included): that value is bound."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        kind = next((name for name, bits in _INTEGER_TYPES if -(2 ** bits) <= value < 2 ** bits), None)
        return f"CAST({int(value)} AS {kind})" if kind else None
    if isinstance(value, float):
        return f"CAST({float(value)!r} AS DOUBLE)" if math.isfinite(value) else None
    if isinstance(value, str):
        return f"CAST({_quoted(value)} AS VARCHAR)"
    if isinstance(value, datetime):
        kind = "TIMESTAMP" if value.tzinfo is None else "TIMESTAMPTZ"
        return f"CAST({_quoted(value.isoformat())} AS {kind})"
    if isinstance(value, date):
        return f"CAST({_quoted(value.isoformat())} AS DATE)"
    return None


# as DuckDB binds a Python int: INTEGER where it fits 32 bits, else BIGINT (wider ones are bound)
_INTEGER_TYPES = (("INTEGER", 31), ("BIGINT", 63))


def setting_literal(value: Any) -> Optional[str]:
    """`value` as the right side of DuckDB's `SET` (a plain literal); None for another type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, str):
        return _quoted(value)
    return None


def _quoted(text: str) -> str:
    # a standard SQL string: DuckDB reads a backslash as itself, a doubled quote as one
    return "'" + text.replace("'", "''") + "'"


def with_literals(query: str, args: Sequence[Any]) -> Optional[str]:
    """`query` with each of dlt's placeholders replaced by its argument as a literal, in order;
    None when an argument has no literal or the placeholders do not match the arguments."""
    parts = query.split(PLACEHOLDER)
    if len(parts) != len(args) + 1:
        return None
    literals = [sql_literal(arg) for arg in args]
    if any(literal is None for literal in literals):
        return None
    pieces = [parts[0]]
    for literal, part in zip(literals, parts[1:]):
        pieces += [literal, part]  # type: ignore[list-item]
    return "".join(pieces)


def apply() -> None:
    """Idempotent: DuckDB's settings and dlt's query parameters as literals (module docstring)."""
    from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

    if getattr(DuckDbSqlClient, _PATCHED, False):
        return
    execute_query = DuckDbSqlClient.execute_query
    apply_config = DuckDbConnectionPool._apply_config

    def execute_query_with_literals(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        if args and not kwargs and isinstance(query, str):
            written = with_literals(query, args)
            if written is not None:
                return execute_query(self, written)
        return execute_query(self, query, *args, **kwargs)

    def apply_config_with_literals(conn: Any, scope: str, config: Dict[str, Any]) -> None:
        import duckdb

        for key, value in config.items():
            literal = setting_literal(value)
            if literal is None:
                apply_config(conn, scope, {key: value})
                continue
            try:
                conn.execute(f"SET {scope} {key} = {literal}")
            except duckdb.CatalogException:
                if key != "search_path":  # dlt lets a search path that does not exist be
                    raise

    execute_query_with_literals.__doc__ = execute_query.__doc__
    DuckDbSqlClient.execute_query = execute_query_with_literals  # type: ignore[method-assign]
    DuckDbConnectionPool._apply_config = staticmethod(apply_config_with_literals)  # type: ignore[method-assign]
    setattr(DuckDbSqlClient, _PATCHED, True)


class _PandasFinder(importlib.abc.MetaPathFinder):
    """On `sys.meta_path` from pyarrow's question until pandas is imported: hides pandas from
    the thread asking pyarrow while it asks; gives any other lookup of pandas the spec the
    finders after it give, its loader made to ask pyarrow again once it has loaded pandas (a
    lookup that imports nothing, `importlib.util.find_spec`, leaves it unused)."""

    def __init__(self) -> None:
        self.hidden_from: Optional[int] = None  # the thread asking pyarrow, while it asks

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pandas":
            return None
        if self.hidden_from == threading.get_ident():
            raise ModuleNotFoundError("pandas is not imported for a sync (pandas_import.py)", name=name)
        spec = self._spec_after_self(name, path, target)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: Any) -> None:
            load(module)
            _leave_meta_path(self)
            ask_pyarrow_again()

        loader.exec_module = exec_module  # the loader is this spec's own (a finder makes one a spec)
        return spec

    def _spec_after_self(self, name: str, path: Any, target: Any) -> Any:
        finders = list(sys.meta_path)
        for finder in finders[finders.index(self) + 1:] if self in finders else finders:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                return spec
        return None


_finder_guard = threading.Lock()
_finder: Optional[_PandasFinder] = None


def _leave_meta_path(finder: _PandasFinder) -> None:
    global _finder
    with _finder_guard:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        if _finder is finder:
            _finder = None


def settle_pyarrow() -> None:
    """Has pyarrow ask, in this thread, whether pandas is there for its conversions of Python
    values, with pandas hidden from this thread when it is installed and not imported yet
    (module docstring). Before the extraction's threads convert values: dlt's main thread looks
    pandas up in `sys.modules` and would otherwise find it half imported by one of them."""
    import pyarrow as pa

    global _finder
    if _finder is not None:
        return  # asked with pandas hidden already; pandas not imported since
    if "pandas" in sys.modules or importlib.util.find_spec("pandas") is None:
        pa.array([])  # pyarrow's question answered at no cost
        return
    with _finder_guard:
        if _finder is None:
            _finder = _PandasFinder()
            sys.meta_path.insert(0, _finder)
        finder = _finder
    finder.hidden_from = threading.get_ident()
    try:
        pa.array([])
    finally:
        finder.hidden_from = None


def ask_pyarrow_again() -> None:
    """pyarrow's check for pandas made again, now that pandas is imported: any of its functions
    that needs pandas does it (`_check_import` tries again while it has none)."""
    import pyarrow.lib

    try:
        pyarrow.lib._pandas_api.pd
    except ImportError:
        pass  # a pandas pyarrow does not take: as it would have found it


__all__ = ["apply", "ask_pyarrow_again", "settle_pyarrow", "setting_literal", "sql_literal", "with_literals"]
