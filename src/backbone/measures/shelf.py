"""Results the release gate published, kept by a long-running door (the web
server) so that a page shows them again instead of deriving them again.

An evaluation's matching or the scorecard's six rate releases take seconds to a
minute; a page that is read many times a day must not redo them (nor add a
ledger entry) on every view. A :class:`Shelf` keeps each result under who it was
released to (partner, role, purpose), the day, and the warehouse's last change
(``audit.last_change``: any write, an agreement's included, starts afresh; a
result during whose making anything changed is not kept).
A user of the same partner and role, for the same purpose, on the same day,
with nothing changed, would be given exactly the same decisions by the policy
and the gate; showing it to them again reveals nothing new. Each showing is
audited all the same. Refusals are never kept: they are decided again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["Shelf"]

_T = TypeVar("_T")


class Shelf:
    """Published results, newest kept (at most ``limit``)."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._kept: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def audience(
        access: Access, what: str, key: tuple[Hashable, ...] = ()
    ) -> tuple[Hashable, ...]:
        """Whom a result was released to: what, for which partner, role and
        purpose, on which day."""
        me = access.principal
        return (what, key, me.partner_id, me.role.value, access.purpose, access.on)

    def find(
        self,
        access: Access,
        changed: Callable[[], int],
        what: str,
        key: tuple[Hashable, ...] = (),
    ) -> Any | None:
        """The result released earlier to ``access``'s audience today while
        nothing has changed (``changed()``: the warehouse's last change), audited
        as shown again; None when there is none (or the user has lapsed: what
        makes it again refuses them)."""
        if access.principal.lapsed(access.on) is not None:
            return None
        full = self.audience(access, what, key)
        with self._lock:
            found = self._kept.get(full)
            if found is None or found[0] != changed():
                return None
            self._kept.move_to_end(full)
        access.log("read", f"{what} (as released earlier, shown again)", **found[2])
        return found[1]

    def keep(
        self,
        access: Access,
        changed: Callable[[], int],
        what: str,
        make: Callable[[], _T],
        key: tuple[Hashable, ...] = (),
        detail: Callable[[_T], dict[str, Any]] | None = None,
    ) -> _T:
        """``make()`` (a release through the gate, as ``access``), kept for its
        audience under the warehouse's last change, if nothing changed while it
        was made (a release's own entries are not changes); else it is given to
        this viewer only, and the next one makes it again. ``detail(result)``: what
        each showing's audit entry says besides (a person-level read's providers
        and rows)."""
        before = changed()
        result = make()
        if changed() != before:  # made partly from what is gone or changed now
            return result
        full = self.audience(access, what, key)
        with self._lock:
            self._kept[full] = (before, result, detail(result) if detail else {})
            self._kept.move_to_end(full)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)
        return result
