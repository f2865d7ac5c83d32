"""A FastAPI dependency that refuses NUL characters in path parameters and query strings."""

from __future__ import annotations

from fastapi import Request

from dtim.model.text import refuse_nul


async def plain_path_and_query(request: Request) -> None:
    """No NUL character in the path parameters or the query string (see dtim.model.text).

    The admin app declares it for every route: pages, admin API, exports and sensors.

    Raises:
        ValidationError: naming the parameter.
    """
    refuse_nul(request.path_params.items())
    refuse_nul(request.query_params.multi_items())
