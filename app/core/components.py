"""The app's long-lived parts (settings, clock, store, caches), registered by type and
handed to routes as typed dependencies: the one place that reads the app's state."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from starlette.datastructures import State
from starlette.requests import HTTPConnection

T = TypeVar("T")


class Components:
    """Parts by the type they are asked for; a part registered twice is a wiring mistake."""

    def __init__(self) -> None:
        self._parts: dict[type[Any], object] = {}

    def add(self, kind: type[T], part: T) -> T:
        if kind in self._parts:
            raise RuntimeError(f"{kind.__name__} is registered twice")
        self._parts[kind] = part
        return part

    def replace(self, kind: type[T], part: T) -> T:
        """For parts made again on each start-up (the store, the caches) in the lifespan."""
        self._parts[kind] = part
        return part

    def get(self, kind: type[T]) -> T:
        try:
            return cast(T, self._parts[kind])
        except KeyError:
            raise RuntimeError(f"{kind.__name__} is not registered (is the app started?)") from None


def components_of(state: State) -> Components:
    components: Components = state.components
    return components


@functools.cache
def component(kind: type[T]) -> Callable[[HTTPConnection], T]:
    """A dependency yielding the registered `kind`; one function per kind, so FastAPI
    resolves it once per request."""

    def get(connection: HTTPConnection) -> T:
        return components_of(connection.app.state).get(kind)

    get.__name__ = f"component_{kind.__name__}"
    return get
