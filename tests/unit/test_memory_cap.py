"""memory.py without glibc's effect: which calls the arena cap and the trim make (their effect
on real threads: tests/test_memory.py; on a long sync's peak: bench/RESULTS.md, Memory)."""

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

