"""What the connected server is: version, role, identity."""

from __future__ import annotations

from opsd.context import Context
from opsd.db.queries import ServerRow, fetch_one


def server_role(ctx: Context) -> ServerRow:
    with ctx.connect() as conn:
        return fetch_one(conn, "server", ServerRow)
