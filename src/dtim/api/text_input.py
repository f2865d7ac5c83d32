"""Refusing NUL characters in path parameters and query strings: a FastAPI dependency."""

from __future__ import annotations

from fastapi import Request

from dtim.model.text import refuse_nul


async def plain_path_and_query(request: Request) -> None:
    """No NUL character in the path parameters or the query string (see dtim.model.text).

    The admin app declares it for every FastAPI route: admin API, exports and
    sensors; the dashboard's pages call :func:`refuse_nul_in_path_and_query`.

    Raises:
        ValidationError: naming the parameter.
    """
    refuse_nul_in_path_and_query(request)


def refuse_nul_in_path_and_query(request: Request) -> None:
    """:func:`plain_path_and_query` as a plain call.

    Raises:
        ValidationError: naming the parameter.
    """
    refuse_nul(request.path_params.items())
    refuse_nul(request.query_params.multi_items())
