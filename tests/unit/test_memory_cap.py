"""memory.py without glibc's or Arrow's effect: which calls the arena cap and the trims make
(their effect on real threads: tests/test_memory.py; on a long sync's peak: bench/RESULTS.md,
Memory)."""

import sys
import types

from aiclicks_pipeline import memory


class FakeLibc:
    def __init__(self) -> None:
        self.calls = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_the_cap_is_two_arenas_unless_the_user_set_one(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: libc)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    memory.cap_malloc_arenas()
    memory.release_free_memory()
    assert libc.calls == [("mallopt", memory.M_ARENA_MAX, 2), ("malloc_trim", 0)]

    libc.calls.clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    memory.cap_malloc_arenas()
    assert libc.calls == []


def test_without_glibc_nothing_happens(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    memory.cap_malloc_arenas()
    memory.release_free_memory()


def test_arrows_pool_is_released_only_where_pyarrow_is_in_use(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    released = []
    pool = types.SimpleNamespace(release_unused=lambda: released.append(True))
    fake = types.SimpleNamespace(default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "pyarrow", fake)
    memory.release_free_memory()
    assert released == [True]

    monkeypatch.delitem(sys.modules, "pyarrow")
    memory.release_free_memory()  # not imported for it
    assert released == [True] and "pyarrow" not in sys.modules
