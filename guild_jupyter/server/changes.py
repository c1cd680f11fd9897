"""Waking long-polls when the store's watcher saw something move.

The watcher (``events.WatchThread``) runs on a thread of its own; the
handlers that long-poll (``/guild/api/events``, ``/guild/api/state``) wait
on the server's event loop without holding an executor thread. ``fire()``
(any thread) resolves every armed waiter through its loop; a handler arms
*before* it checks what it waits for, so a change between the check and the
wait is never missed.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["Changes"]


class Changes:
    def __init__(self):
        self._lock = threading.Lock()
        self._armed: set = set()

    def arm(self) -> asyncio.Future:
        """A future the next ``fire()`` resolves (call on the event loop)."""
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            self._armed.add(fut)
        return fut

    def disarm(self, fut: asyncio.Future) -> None:
        with self._lock:
            self._armed.discard(fut)
        if not fut.done():
            fut.cancel()

    def fire(self) -> None:
        """Wakes every armed waiter (from any thread)."""
        with self._lock:
            armed, self._armed = self._armed, set()
        for fut in armed:
            try:
                fut.get_loop().call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # its loop has closed: the server is going down
                pass

    async def wait(self, fut: asyncio.Future, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for ``fut`` (from ``arm``); True if
        it fired."""
        if timeout <= 0:
            return fut.done()
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except asyncio.TimeoutError:
            return fut.done() and not fut.cancelled()


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
