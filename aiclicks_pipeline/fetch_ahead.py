"""A few items fetched at once, handed on in their order.

Each domain-scoped endpoint walks its domains (source.py), and a domain's pages follow each
other (each page says whether there is a next). Walked one domain at a time, the endpoint
with the most pages was the sync's critical path while its keys had budget to spare: with 4
keys of 60 requests / 6 s and 150 ms an answer, the requests of a 20-domain sync ended at
1.58 x the keys' floor (bench/RESULTS.md, key pool). `in_order` fetches the next few domains
while the rows of the first are handled, and hands them on in the order given, so every
table is still stored in domain order (checkpoints.py) and each response is handled in the
thread that owns the resource's state. The key pool keeps the total within every key's
budget, however many requests wait for it.
"""

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Deque, Iterable, Iterator, Tuple, TypeVar

_END = object()
Item = TypeVar("Item")
Fetched = TypeVar("Fetched")


def in_order(
    items: Iterable[Item],
    fetch: Callable[[Item, threading.Event], Fetched],
    at_once: int,
    name: str = "fetch-ahead",
) -> Iterator[Tuple[Item, Fetched]]:
    """`(item, fetch(item, stop))` for each item, in the order of `items`, with up to `at_once`
    fetches running at a time in threads of its own. A fetch's exception is raised here, at
    its item's turn. When the caller stops early (an error, the generator closed) `stop` is
    set, for fetches in progress to end between their requests, and fetches not started are
    dropped."""
    if at_once <= 1:
        idle = threading.Event()
        for item in items:
            yield item, fetch(item, idle)
        return
    stop = threading.Event()
    pending: Deque[Tuple[Item, "Future[Fetched]"]] = deque()
    upcoming = iter(items)
    executor = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix=name)

    def submit_next() -> None:
        item = next(upcoming, _END)
        if item is not _END:
            pending.append((item, executor.submit(fetch, item, stop)))

    try:
        for _ in range(at_once):
            submit_next()
        while pending:
            item, future = pending.popleft()
            fetched = future.result()
            # the next fetch starts before this item is handed on: the threads stay busy
            # while the caller handles it
            submit_next()
            yield item, fetched
    finally:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
