"""Per-parent counters for version numbers, assigned by the database without races.

The parent row (a dataset, a registered model) carries ``last_version``. Incrementing it with
an UPDATE locks that row until the transaction commits, so concurrent writers queue on it:
numbers are 1..n with no gaps or duplicates, and a deleted number is never handed out again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update


def next_number(conn: Connection, table: Any, row_id: int, now: int) -> int:
    """Increment ``table.last_version`` of row ``row_id`` and return the new value."""
    number: int = conn.execute(
        update(table)
        .where(table.c.id == row_id)
        .values(last_version=table.c.last_version + 1, last_update_time=now)
        .returning(table.c.last_version)
    ).scalar_one()
    return number
