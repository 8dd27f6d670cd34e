"""The sampler keeps one Python thread state per draw in nutpie's worker threads
(:mod:`bayesdecide.model.thread_state`): every hold is given back, in the thread that took it."""

from __future__ import annotations

import threading

from bayesdecide.model import thread_state
from bayesdecide.model.fitting import fit

from .conftest import synthetic_table


def _counting(monkeypatch) -> dict[str, list[int]]:
    """Wrap the C API calls so each records the native thread that made it."""
    calls: dict[str, list[int]] = {"ensure": [], "release": []}
    ensure, release = thread_state._ensure, thread_state._release
    assert ensure is not None and release is not None  # CPython

    def counted_ensure():
        calls["ensure"].append(threading.get_native_id())
        return ensure()

    def counted_release(state):
        calls["release"].append(threading.get_native_id())
        release(state)

    monkeypatch.setattr(thread_state, "_ensure", counted_ensure)
    monkeypatch.setattr(thread_state, "_release", counted_release)
    return calls


def test_release_gives_back_only_what_this_thread_holds(monkeypatch):
    calls = _counting(monkeypatch)
    thread_state.release()  # nothing held: nothing given back
    thread_state.hold()
    thread_state.hold()  # once per thread
    worker = threading.Thread(target=thread_state.release)  # another thread holds nothing
    worker.start()
    worker.join()
    assert len(calls["release"]) == 0
    thread_state.release()
    assert calls["ensure"] == calls["release"] == [threading.get_native_id()]


def test_a_fit_gives_back_every_thread_state_it_held(monkeypatch):
    """Held in the worker threads (not the caller's) and given back in each, none left over."""
    calls = _counting(monkeypatch)
    fit(synthetic_table(), factors=["fa"], draws=60, tune=60, chains=2, cores=2,
        progressbar=False)  # fmt: skip
    assert calls["ensure"], "the sampler held no thread state"
    assert sorted(calls["ensure"]) == sorted(calls["release"])
    assert threading.get_native_id() not in calls["ensure"]
