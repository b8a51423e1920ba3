"""Connection and pool reports (pure): server connections by state, database, user and application against
max_connections minus the reserved slots; PgBouncer pools with waiting clients and saturation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from opsd.core.records.health import ConnectionReport, Pool, PoolReport, PoolStats
from opsd.db.queries import ConnectionRow, LimitsRow


def connection_report(rows: Sequence[ConnectionRow], limits: LimitsRow) -> ConnectionReport:
    def group(key: str) -> dict[str, int]:
        c: Counter[str] = Counter()
        for r in rows:
            c[getattr(r, key) or "-"] += r.sessions
        return dict(c.most_common())

    return ConnectionReport(
        total=sum(r.sessions for r in rows), usable=limits.max_connections - limits.reserved,
        max_connections=limits.max_connections, reserved=limits.reserved, by_state=group("state"),
        by_database=group("datname"), by_user=group("usename"), by_application=group("application_name"))


def _i(row: dict[str, Any], key: str) -> int:
    v = row.get(key)
    return int(v) if v is not None else 0


def pool_report(shows: dict[str, list[dict[str, Any]]]) -> PoolReport:
    dbs = {d["name"]: d for d in shows.get("databases", [])}
    pools = []
    for p in shows.get("pools", []):
        if p.get("database") == "pgbouncer":  # the admin console itself
            continue
        db = dbs.get(p["database"], {})
        servers = sum(_i(p, k) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
        size = db.get("pool_size")
        max_db = db.get("max_connections")
        pools.append(Pool(
            database=str(p["database"]), user=str(p["user"]), cl_active=_i(p, "cl_active"),
            cl_waiting=_i(p, "cl_waiting"), sv_active=_i(p, "sv_active"), sv_idle=_i(p, "sv_idle"),
            sv_used=_i(p, "sv_used"), servers=servers, maxwait=_i(p, "maxwait") + _i(p, "maxwait_us") / 1e6,
            pool_mode=str(p.get("pool_mode") or db.get("pool_mode") or ""),
            pool_size=int(size) if size else None, max_db_connections=int(max_db) if max_db else None))
    stats = [PoolStats(database=str(s["database"]), avg_query_us=_i(s, "avg_query_time"),
                       avg_wait_us=_i(s, "avg_wait_time"), avg_xact_us=_i(s, "avg_xact_time"),
                       total_xact_count=_i(s, "total_xact_count"))
             for s in shows.get("stats", []) if s.get("database") != "pgbouncer"]
    return PoolReport(pools=sorted(pools, key=lambda x: (-x.cl_waiting, x.database, x.user)), stats=stats)
