"""dlt's configuration lookups, with the type-hint questions they ask answered once per hint.

dlt resolves a configuration (a writer's, the destination's, a step's) many times a run: for
every table's file writer, for each `capabilities()` call, for each step. Each field of each
lookup asks, for every provider and every section path tried, whether its type hint is a
secret (`is_secret_hint`) and what its inner type is (`extract_inner_hint`): typing
introspection, the same answer every time for the same hint. Profiled (py-spy), configuration
resolution was a quarter of a 10-domain sync's time, most of it these two functions. Both are
pure functions of their arguments, so their answers are kept (per hint: a few hundred at most);
a hint that cannot be a key (unhashable metadata) is answered as before.

dlt's schema checks (`validate_dict`: a table's columns, the normalizer's settings) ask for a
TypedDict's annotations (`get_type_hints`) at every dict they check: 615 times a 10-domain sync,
25 ms of its 0.75 s (dlt's own comment there says it should be cached). A class's annotations
are the same every time; they are kept per class, and each caller gets its own copy.

Applied once when the package is imported, to every loaded dlt module that imported them by
name; a module dlt imports later keeps the plain functions (slower, the same answers).
"""

import functools
import sys
from typing import Any, Callable, Dict

_PATCHED = "_aiclicks_cached"
_CACHED_FUNCTIONS = ("is_secret_hint", "extract_inner_hint")
_TYPE_HINTS = "get_type_hints"


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


def cached_type_hints(function: Callable[..., Any]) -> Callable[..., Any]:
    """`get_type_hints` with each class's answer kept, where it is asked in the class's own
    module's namespace (or none) and no local one; a copy each time (callers may change it)."""
    remembered: Dict[Any, Dict[str, Any]] = {}

    @functools.wraps(function)
    def answer(obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False) -> Any:
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        own_namespace = globalns is None or (module is not None and globalns is module.__dict__)
        if localns is not None or not own_namespace or not isinstance(obj, type):
            return function(obj, globalns, localns, include_extras)
        key = (obj, globalns is None, include_extras)
        hints = remembered.get(key)
        if hints is None:
            hints = remembered[key] = function(obj, globalns, localns, include_extras)
        return dict(hints)

    setattr(answer, _PATCHED, True)
    return answer


def apply() -> None:
    """Idempotent: the cached functions replace dlt's in every dlt module that holds them."""
    from dlt.common import typing as dlt_typing
    from dlt.common.configuration.specs import base_configuration

    replacements: Dict[int, Callable[..., Any]] = {}
    for name in _CACHED_FUNCTIONS:
        original = getattr(base_configuration, name)
        if getattr(original, _PATCHED, False):
            return
        replacements[id(original)] = cached_pure(original)
    type_hints = getattr(dlt_typing, _TYPE_HINTS)
    replacements[id(type_hints)] = cached_type_hints(type_hints)
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "dlt" or module_name.startswith("dlt.")):
            continue
        namespace = getattr(module, "__dict__", {})
        for name in (*_CACHED_FUNCTIONS, _TYPE_HINTS):
            held = namespace.get(name)
            if held is not None and id(held) in replacements:
                setattr(module, name, replacements[id(held)])


__all__ = ["apply", "cached_pure", "cached_type_hints"]
