"""Lists that grow to thousands (aliases, adapter versions) are read a window at a time:
filtered by a case-insensitive part of the name, then cut at `offset`/`limit`. The admin
API keeps its response body the plain list it always was and says the rest in headers, as
GitHub's API does: `X-Total-Count`, and `Link: <…>; rel="next"` while more are left."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request, Response

T = TypeVar("T")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Window:
    """What a caller asked for: the name filter and the window."""

    name: str | None = None
    limit: int = MAX_LIMIT
    offset: int = 0


def window(
    name: Annotated[
        str | None, Query(max_length=128, description="Only names containing this (any case).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Window:
    return Window(name, limit, offset)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


def page(items: Sequence[T], name: Callable[[T], str], asked: Window) -> Page[T]:
    """The window of `items` (already in display order) whose name contains the filter."""
    wanted = asked.name.casefold() if asked.name else None
    chosen = [i for i in items if wanted is None or wanted in name(i).casefold()]
    cut = chosen[asked.offset : asked.offset + asked.limit]
    return Page(cut, len(chosen), asked.offset, asked.limit)


def describe(response: Response, request: Request, found: Page[T]) -> list[T]:
    """The page's items, with its total and the next page's address in the headers."""
    response.headers["X-Total-Count"] = str(found.total)
    if found.has_more:
        following = request.url.include_query_params(offset=found.offset + found.limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return found.items
