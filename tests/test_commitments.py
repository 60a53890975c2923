from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from backbone import Warehouse
from backbone.errors import NotFoundError, UserError

from .governance_fixtures import register_partners


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.init(tmp_path / "wh") as w:
        register_partners(w)
        yield w


MEETING = date(2026, 10, 1)


def test_overdue_commitments_by_owner_with_dated_history(wh: Warehouse) -> None:
    book = wh.commitments
    with wh.session() as s:
        lists = book.add(
            s,
            "Collect graduate lists",
            owner="d1",
            owner_person="Ana",
            counterpart="a1",
            due=date(2026, 11, 1),
            made_on=MEETING,
            context="October meeting",
        )
    with wh.session() as s:
        book.add(s, "Send rosters", owner="c1", due=date(2026, 12, 15), made_on=MEETING)
    with wh.session() as s:
        done = book.add(
            s, "Sign the DSA", owner="a1", due=date(2026, 10, 15), made_on=MEETING
        )
    with wh.session() as s:
        book.update(
            s, done.commitment_id, on=date(2026, 10, 10), status="done", note="Signed."
        )
    today = date(2026, 11, 30)
    overdue = book.list(on=today, overdue=True)
    assert [c.title for c in overdue] == ["Collect graduate lists"]
    assert overdue[0].days_late(today) == 29
    assert [c.title for c in book.list(on=today, owner="c1")] == ["Send rosters"]
    assert [c.title for c in book.list(on=today, counterpart="a1")] == [
        "Collect graduate lists"
    ]
    with wh.session() as s:
        book.update(
            s,
            lists.commitment_id,
            on=date(2026, 11, 20),
            due=date(2026, 12, 5),
            note="Each side thought the other was collecting them.",
        )
    assert book.list(on=today, overdue=True) == []
    history = book.history(lists.commitment_id)
    assert [(h.on, h.status, h.due) for h in history] == [
        (MEETING, "open", date(2026, 11, 1)),
        (date(2026, 11, 20), "open", date(2026, 12, 5)),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"owner": "zz"}, "Unknown owner partner 'zz'"),
        ({"counterpart": "zz"}, "Unknown counterpart partner 'zz'"),
        ({"counterpart": "d1"}, "cannot be the owner"),
        ({"due": date(2026, 9, 1)}, "before the day it was made"),
        ({"title": "  "}, "Say what was promised"),
    ],
)
def test_bad_commitments_are_refused(
    wh: Warehouse, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "title": "Do it",
        "owner": "d1",
        "due": date(2026, 11, 1),
        "made_on": MEETING,
    }
    args.update(kwargs)
    title = args.pop("title")
    with pytest.raises(UserError, match=message), wh.session() as s:
        wh.commitments.add(s, title, **args)  # type: ignore[arg-type]
    assert wh.commitments.list(on=MEETING) == []


def test_updates_need_something_to_record(wh: Warehouse) -> None:
    with wh.session() as s:
        c = wh.commitments.add(
            s, "Do it", owner="d1", due=date(2026, 11, 1), made_on=MEETING
        )
    with pytest.raises(UserError, match="Give a new --status"), wh.session() as s:
        wh.commitments.update(s, c.commitment_id, on=MEETING)
    with pytest.raises(UserError, match="not one of open"), wh.session() as s:
        wh.commitments.update(s, c.commitment_id, on=MEETING, status="finished")
    with (
        pytest.raises(UserError, match="before the day it was made"),
        wh.session() as s,
    ):
        wh.commitments.update(s, c.commitment_id, on=MEETING, due=date(2000, 1, 1))
    with pytest.raises(NotFoundError), wh.session() as s:
        wh.commitments.update(s, 99, on=MEETING, status="done")
