"""mAPI v2 paging: `?page=1&perPage=10` -> `{data, pagination, links}` (Gravitee 4.x's shape).

Pages count from 1; `perPage` is at most 1000. A bad value is a 400 naming the parameter."""
from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import request

from ..errors import BadRequestError

MAX_PER_PAGE = 1000


def _positive(name: str, default: int, upper: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (upper is not None and value > upper):
        limit = f" and at most {upper}" if upper else ""
        raise BadRequestError(f"$.{name}: must be an integer of at least 1{limit}, not {raw!r}",
                              key="pagination.invalid")
    return value


def paged(items: list[Any]) -> dict[str, Any]:
    """One page of `items` (already filtered for the caller) with its pagination and links."""
    page = _positive("page", 1)
    per_page = _positive("perPage", 10, MAX_PER_PAGE)
    total = len(items)
    page_count = max(1, math.ceil(total / per_page))
    data = items[(page - 1) * per_page: page * per_page]

    def link(number: int) -> str:
        args = {k: v for k, v in request.args.items() if k not in ("page", "perPage")}
        args.update(page=number, perPage=per_page)
        return f"{request.base_url}?{urlencode(args)}"

    links = {"self": link(page), "first": link(1), "last": link(page_count)}
    if page > 1:
        links["previous"] = link(min(page - 1, page_count))
    if page < page_count:
        links["next"] = link(page + 1)
    return {"data": data,
            "pagination": {"page": page, "perPage": per_page, "pageCount": page_count,
                           "pageItemsCount": len(data), "totalCount": total},
            "links": links}
