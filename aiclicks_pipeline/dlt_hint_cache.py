"""dlt's configuration lookups, with the type-hint questions they ask answered once per hint.

dlt resolves a configuration (a writer's, the destination's, a step's) many times a run: for
every table's file writer, for each `capabilities()` call, for each step. Each field of each
lookup asks, for every provider and every section path tried, whether its type hint is a
secret (`is_secret_hint`) and what its inner type is (`extract_inner_hint`): typing
introspection, the same answer every time for the same hint. Profiled (py-spy), configuration
resolution was a quarter of a 10-domain sync's time, most of it these two functions. Both are
pure functions of their arguments, so their answers are kept (per hint: a few hundred at most);
a hint that cannot be a key (unhashable metadata) is answered as before.

Applied once when the package is imported, to every loaded dlt module that imported them by
name; a module dlt imports later keeps the plain functions (slower, the same answers).
"""

import functools
import sys
from typing import Any, Callable, Dict

_PATCHED = "_aiclicks_cached"
_CACHED_FUNCTIONS = ("is_secret_hint", "extract_inner_hint")


def cached_pure(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its answers kept by argument; arguments that are not hashable are
    answered by `function` itself each time."""
    remembered = functools.lru_cache(maxsize=4096)(function)

    @functools.wraps(function)
    def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            return remembered(*args, **kwargs)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            return function(*args, **kwargs)

    setattr(answer, _PATCHED, True)
    return answer


def apply() -> None:
    """Idempotent: the cached functions replace dlt's in every dlt module that holds them."""
    from dlt.common.configuration.specs import base_configuration

    replacements: Dict[int, Callable[..., Any]] = {}
    for name in _CACHED_FUNCTIONS:
        original = getattr(base_configuration, name)
        if getattr(original, _PATCHED, False):
            return
        replacements[id(original)] = cached_pure(original)
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "dlt" or module_name.startswith("dlt.")):
            continue
        namespace = getattr(module, "__dict__", {})
        for name in _CACHED_FUNCTIONS:
            held = namespace.get(name)
            if held is not None and id(held) in replacements:
                setattr(module, name, replacements[id(held)])


__all__ = ["apply", "cached_pure"]
