"""Rights notices past due are marked overdue once across processes (PostgreSQL): while one
transaction marks them, another finds none to mark, and after it has committed neither."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from consentry import clock
from consentry.storage import delivery as sql
from consentry.storage.engine import Store


def _notice(n: int) -> dict[str, object]:
    now = clock.now()
    return {
        "notice_id": f"rn_{n}",
        "system_id": "crm",
        "subject_id": f"s_{n}",
        "type": "purge",
        "forward": False,
        "status": sql.PENDING,
        "next_at": now + timedelta(hours=1),
        "created_at": now - timedelta(days=31),
        "due_at": now - timedelta(days=1),
    }


@pytest.mark.parametrize("backend", ["postgresql"])
def test_notices_being_marked_overdue_elsewhere_are_not_marked_again(store: Store) -> None:
    with store.write() as conn:
        sql.insert_notices(conn, [_notice(n) for n in range(3)])
    found: list[int] = []
    with store.write() as first:
        now = clock.now()
        marking = sql.newly_overdue(first, now)
        assert len(marking) == 3
        for row in marking:
            sql.update_notice(first, row.notice_id, overdue_at=now)

        def other() -> None:
            with store.write() as second:
                found.append(len(sql.newly_overdue(second, clock.now())))

        # Another process's transaction meanwhile: the notices are being marked here.
        meanwhile = threading.Thread(target=other)
        meanwhile.start()
        meanwhile.join(10)
        assert not meanwhile.is_alive()
    with store.write() as conn:
        assert sql.newly_overdue(conn, clock.now()) == []
    assert found == [0]
