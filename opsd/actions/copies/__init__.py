"""Copies of production: every drill, side copy (restore --table, wal find --catalog-from-copy) and rehearsal
is made, quarantined, recorded and cleaned here, and nowhere else (``room.copy_room``)."""
