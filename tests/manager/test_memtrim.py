"""release_free_memory() on this machine's C library."""

from __future__ import annotations

from unitmgr.manager.memtrim import release_free_memory


def test_release_runs_twice_without_error() -> None:
    # glibc here: malloc_trim runs; elsewhere the call does nothing.
    release_free_memory()
    release_free_memory()
