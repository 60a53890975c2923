"""The server's hold on the warehouse, shared by the web site and the API: the
:class:`Keeper` keeps one warehouse open between requests and hands it over to
other processes; the :class:`Preparer` makes releases too costly for a request
away from the requests and keeps them on the shelf for their audience."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backbone.engines import EngineError
from backbone.errors import Conflict, NotFoundError, WarehouseError
from backbone.governance.principals import Principal
from backbone.measures.shelf import Shelf
from backbone.warehouse import Warehouse

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["Keeper", "Preparer", "StillPreparing", "Ticket"]

WATCH_SECONDS = 0.1
# how long a request lets processes that wait for the warehouse go first
WAITERS_FIRST_SECONDS = 30.0


class Keeper:
    """The server's warehouse, kept open from one request to the next (opening it
    and warming its stages for every request would cost more than most pages) and
    handed over whenever another process (a CLI command, a job) waits for it, or
    once no request has come for ``idle_seconds``. One request at a time uses it;
    pages render outside. A warehouse another process has written meanwhile is
    opened afresh, so nothing read before is kept."""

    def __init__(self, path: Path, idle_seconds: float = 2.0) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        # shared with the warehouses opened beside it (see Preparer)
        self.write_lock = threading.RLock()
        self._warehouse: Warehouse | None = None
        self._lock = threading.Lock()
        self._beside = 0  # warehouses of the same file open in this process now
        self._last_used = time.monotonic()
        self._stop = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, name="backbone-keeper", daemon=True
        )
        self._watcher.start()

    @contextmanager
    def opened(self) -> Iterator[Warehouse]:
        with self._lock:
            if self._warehouse is not None and self._handing_over():
                self._close()
            if self._warehouse is None:
                if not self._beside:
                    self._let_waiters_in()
                self._warehouse = Warehouse.open(self.path, write_lock=self.write_lock)
            try:
                yield self._warehouse
            except (WarehouseError, EngineError, KeyboardInterrupt, SystemExit):
                self._close()  # start afresh next time
                raise
            finally:
                self._last_used = time.monotonic()

    def _handing_over(self) -> bool:
        """Another process waits for the file, and closing ours would let it in
        (not while a warehouse beside ours holds the file open in this process)."""
        return not self._beside and Warehouse.wanted_elsewhere(self.path)

    @contextmanager
    def beside(self) -> Iterator[None]:
        """A block during which another warehouse of the same file is open in this
        process (the Preparer's)."""
        with self._lock:
            self._beside += 1
        try:
            yield
        finally:
            with self._lock:
                self._beside -= 1

    def _let_waiters_in(self) -> None:
        """Before taking the file again, let a process that waits for it have it
        first (it polls; without this the next request would take it back)."""
        deadline = time.monotonic() + WAITERS_FIRST_SECONDS
        while Warehouse.wanted_elsewhere(self.path) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _close(self) -> None:
        warehouse, self._warehouse = self._warehouse, None
        if warehouse is not None:
            warehouse.close()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            if not self._lock.acquire(blocking=False):
                continue  # a request has it
            try:
                idle = time.monotonic() - self._last_used > self.idle_seconds
                if self._warehouse is not None and (idle or self._handing_over()):
                    self._close()
            finally:
                self._lock.release()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._close()


class StillPreparing(Exception):
    """A page's result is being made away from the pages (answered by a page that
    says so and reloads itself once it is ready)."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(ticket.what)
        self.ticket = ticket


@dataclass
class Ticket:
    ticket_id: int
    what: str
    audience: tuple[Hashable, ...]
    done: bool = False
    error: BaseException | None = None


KEEP_TICKETS = 256
MAX_PREPARING = 8  # waiting or being made at once: more would starve the others


class Preparer:
    """Releases too costly to make while a page waits (an evaluation's matching,
    the scorecard's protected cells: seconds to a minute), made one at a time in a
    thread of their own, on a warehouse of their own (the same file and audit
    lock as the keeper's: pages go on meanwhile), and kept on the shelf for
    their audience. One ticket per audience: a second user of it waits on the
    same one."""

    def __init__(self, keeper: Keeper, shelf: Shelf) -> None:
        self.keeper = keeper
        self.shelf = shelf
        self._tickets: dict[tuple[Hashable, ...], Ticket] = {}
        self._by_id: dict[int, Ticket] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="backbone-prepare")

    def start(
        self,
        access: Access,
        what: str,
        make: Callable[[Warehouse, Access], Any],
        key: tuple[Hashable, ...],
        detail: Callable[[Any], dict[str, Any]] | None = None,
    ) -> Ticket:
        """The ticket of the audience's release: one started now, the one under
        way, or a failed one's error raised (once: asking again starts anew)."""
        audience = Shelf.audience(access, what, key)
        user_id, purpose = access.principal.user_id, access.purpose
        with self._lock:
            ticket = self._tickets.get(audience)
            if ticket is not None and ticket.error is not None:
                del self._tickets[audience]
                raise ticket.error
            if ticket is not None and not ticket.done:
                return ticket
            if sum(not t.done for t in self._by_id.values()) >= MAX_PREPARING:
                raise Conflict(
                    f"{MAX_PREPARING} results are being prepared; ask again when "
                    "one of them is ready."
                )
            ticket = Ticket(next(self._ids), what, audience)
            self._tickets[audience] = ticket
            self._by_id[ticket.ticket_id] = ticket
            while len(self._by_id) > KEEP_TICKETS:  # the oldest first
                old = self._by_id.pop(next(iter(self._by_id)))
                if self._tickets.get(old.audience) is old:
                    del self._tickets[old.audience]

        def run() -> None:
            try:
                with (
                    self.keeper.beside(),
                    Warehouse.open(
                        self.keeper.path, write_lock=self.keeper.write_lock
                    ) as wh,
                ):
                    me = wh.users.current(user_id)
                    mine = wh.access(me, purpose)
                    wh.keep(
                        self.shelf,
                        mine,
                        what,
                        lambda: make(wh, mine),
                        *key,
                        detail=detail,
                    )
            except BaseException as exc:  # shown to whoever asks next
                ticket.error = exc
            finally:
                ticket.done = True

        self._pool.submit(run)
        return ticket

    def ticket(self, ticket_id: int, me: Principal) -> Ticket:
        """A ticket of ``me``'s audience (another's is not found)."""
        found = self._by_id.get(ticket_id)
        if found is None or found.audience[2:4] != (me.partner_id, me.role.value):
            raise NotFoundError("nothing is being prepared for you under that number.")
        return found

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
