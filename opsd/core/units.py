"""Units for people: byte counts in binary units (pgBackRest's "MB" is MiB too) and durations."""

from __future__ import annotations

from datetime import timedelta


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_duration(td: timedelta | float) -> str:
    secs = td.total_seconds() if isinstance(td, timedelta) else float(td)
    if secs < 60:
        return f"{secs:.1f}s"
    mins, s = divmod(round(secs), 60)
    hours, mins = divmod(mins, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else "",
             f"{s}s" if s and not days else ""]
    return "".join(p for p in parts if p) or "0s"
