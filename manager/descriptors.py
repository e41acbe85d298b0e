"""Keep the manager's own descriptors out of the units it starts, and size its table.

Python, libzmq and the manager open every descriptor close-on-exec, but the
manager may have inherited open descriptors from whatever started it (a
login script, a terminal, a test runner), and those lack FD_CLOEXEC. A unit
must see only its stdio and the sockets passed to it (systemd closes every
other descriptor), so before the first spawn every descriptor from 3 up is
made close-on-exec. Once is enough, because everything opened later is
close-on-exec already (PEP 446). spawn.py then dup2s the passed ones, which
clears the flag on the copies only.

The kernel doubles a process's descriptor table whenever a new descriptor
does not fit. While other threads share the table (the log removal thread,
libzmq's I/O threads), each growth waits for an RCU grace period, so that no
thread still reads the old table: 10 to 20 ms each time on the machines
measured, at 256, 512, 1024 and 2048 descriptors during a boot of 500 units,
about a tenth of that boot. reserve_table() grows the table once, before
any thread starts, when no wait is needed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource

log = logging.getLogger(__name__)


def seal_inherited() -> list[int]:
    """Set FD_CLOEXEC on every open descriptor >= 3 that lacks it; return the ones changed."""
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return []
    changed = []
    for entry in entries:
        fd = int(entry)
        if fd < 3:
            continue
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            if not flags & fcntl.FD_CLOEXEC:
                fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
                changed.append(fd)
        except OSError:
            continue  # the listing's own descriptor, closed by now
    if changed:
        log.debug("made inherited descriptors close-on-exec: %s", changed)
    return changed


# Descriptors the manager keeps open per unit: its stdout and stderr pipes and its two log files.
DESCRIPTORS_PER_UNIT = 4
# Descriptors of the manager itself: sockets, epoll, signal and event descriptors, files being read.
DESCRIPTORS_OWN = 256
# The table is never grown past this at start-up (512 KiB of kernel memory on 64-bit machines).
MAX_RESERVED = 65536


def descriptors_for(units: int) -> int:
    """Return how many descriptors a manager of `units` units is expected to hold."""
    return DESCRIPTORS_OWN + DESCRIPTORS_PER_UNIT * units


def reserve_table(count: int) -> int:
    """Grow this process's descriptor table to hold `count` descriptors; return the lowest number it now holds.

    Call it before the process starts threads. The table is held to the soft
    RLIMIT_NOFILE and to MAX_RESERVED; nothing stays open."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        count = min(count, soft)
    top = min(count, MAX_RESERVED) - 1
    if top < 3:
        return 0
    try:
        probe = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        # F_DUPFD takes the lowest free number at or above `top`, so no open descriptor is replaced.
        high = fcntl.fcntl(probe, fcntl.F_DUPFD_CLOEXEC, top)
    except OSError as exc:
        log.debug("could not reserve %d descriptors: %s", count, exc)
        return 0
    finally:
        os.close(probe)
    os.close(high)
    return high + 1
