"""One Python thread state per sampler draw in nutpie's worker threads.

nutpie runs the chains in Rust threads that call the density through Python. Each call takes the
GIL with CPython's ``PyGILState_Ensure``; a thread that has no Python thread state of its own
gets a new one for the call, deleted when the call returns. Creating one maps a frame stack and
deleting it unmaps it, and an unmap in a process whose other threads are running interrupts their
cores to flush the TLB. The retention fit (4 chains on 2 cores, about 43,000 density calls) spent
1.3-1.8 s of system time on that; with one thread state per draw, 0.19-0.25 s
(`docs/benchmarks.md`).

:func:`hold` takes one more ``PyGILState_Ensure`` in the calling thread, so that the thread state
outlives the call; :func:`release`, in the same thread, gives it back (the state is then deleted
when the call that holds the GIL returns). The sampler holds it from a chain's first density call
of a draw to that draw's expansion (one per draw, warm-up included), so no thread state outlives
the sampling (an interrupted one may leave one per worker thread, a few kB each). Both are
no-ops outside CPython. CPython's documented C API, through ``ctypes``.
"""

from __future__ import annotations

import ctypes
import threading

_api = getattr(ctypes, "pythonapi", None)
_ensure = getattr(_api, "PyGILState_Ensure", None)
_release = getattr(_api, "PyGILState_Release", None)
if _ensure is not None and _release is not None:
    _ensure.restype = ctypes.c_int
    _ensure.argtypes = []
    _release.restype = None
    _release.argtypes = [ctypes.c_int]

_held = threading.local()


def hold() -> None:
    """Keep the calling thread's Python thread state after the current call (once per thread)."""
    if _ensure is not None and not getattr(_held, "state", None):
        _held.state = (_ensure(),)


def release() -> None:
    """Give back what :func:`hold` kept in this thread; nothing if it kept nothing."""
    state = getattr(_held, "state", None)
    if state and _release is not None:
        _held.state = None
        _release(state[0])


__all__ = ["hold", "release"]
