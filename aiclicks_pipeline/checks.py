"""Options checked before anything happens: a bad name, number or path is refused in one line
(a `UsageError`, exit 1), with "did you mean" for a near miss, before the first request and
before any state changes. The command line checks them all up front (commands/base.py); the
library functions that take the same values (aiclicks_source, make_pipeline, run_sync) check
them with the same functions, so a value from dlt's config is refused in the same words."""

import difflib
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from .errors import UsageError
from .windows import check_windows


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest of `known`, or "" when none is close."""
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_names(kind: str, given: Optional[Sequence[str]], known: Sequence[str]) -> None:
    """Every name in `given` is one of `known` (an empty list is refused: it would mean all)."""
    if given is not None and not given:
        raise UsageError(f"Give at least one {kind}; choose from {', '.join(known)}")
    for name in given or ():
        if name not in known:
            raise UsageError(
                f"Unknown {kind} {name!r}{did_you_mean(name, known)}; choose from {', '.join(known)}"
            )


def check_window_days(
    initial_days: Optional[int] = None,
    lookback_days: Optional[int] = None,
    snapshot_days: Optional[int] = None,
) -> None:
    """The source's windows, those given, when the API can serve them (windows.check_windows)."""
    given = {"initial_days": initial_days, "lookback_days": lookback_days, "snapshot_days": snapshot_days}
    check_windows(**{name: value for name, value in given.items() if value is not None})


def parse_shard(shard: str) -> Tuple[int, int]:
    """`"k/n"` -> (k, n), 1 <= k <= n."""
    try:
        k, n = (int(part) for part in str(shard).split("/"))
    except ValueError:
        raise UsageError(f"shard must look like 2/4 (k of n), got {shard!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"shard {shard!r}: k must be between 1 and n")
    return k, n


def check_duckdb_file(path: Path, dataset: str, create_folder: bool = False) -> Path:
    """The DuckDB file `path`, resolved: not named like the dataset, not a folder; its folder
    created when `create_folder` (a sync writes the file), refused when it cannot be."""
    path = path.expanduser().resolve()
    if path.stem == dataset:
        # DuckDB cannot tell a catalog `x` (the file) from a schema `x` (the dataset)
        raise UsageError(
            f"The DuckDB file {path.name!r} is named like the dataset {dataset!r}; DuckDB then "
            "cannot tell the catalog from the schema and the load fails. Choose another file "
            "name or dataset."
        )
    if path.is_dir():
        raise UsageError(f"The DuckDB file {path} is a folder; name a file in it")
    if create_folder:
        make_folder(path.parent, f"the folder of the DuckDB file {path.name}")
    return path


def check_output_file(path: str, option: str) -> Path:
    """A file a command writes at its end (`--summary-file`): its folder is made now, so a
    long run does not fail at its last step."""
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise UsageError(f"{option} {path} is a folder; name a file")
    make_folder(target.parent, f"the folder of {option} {path}")
    return target


def make_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot create {what}, {folder}: {exc.strerror or exc}") from None


def check_domain_ids(wanted: Sequence[str], listed: Sequence[str]) -> List[str]:
    """The ids of `wanted` the key does not list; refuses a list none of whose ids it lists
    (nothing would be synced: a typo, or the wrong key)."""
    unknown = [domain_id for domain_id in wanted if domain_id not in listed]
    if wanted and len(unknown) == len(wanted):
        hints = "".join(did_you_mean(domain_id, listed) for domain_id in unknown)
        raise UsageError(
            f"None of the --domains ids is among the {len(listed)} domains this key can see: "
            f"{', '.join(unknown)}{hints}. Deleted, or outside the key's allowed domains? "
            "`aiclicks-pipeline plan --detail` lists the key's domains."
        )
    return unknown
