"""Keep the manager's own descriptors out of the units it starts.

Python, libzmq and the manager open every descriptor close-on-exec, but the
manager may have inherited open descriptors from whatever started it (a
login script, a terminal, a test runner), and those lack FD_CLOEXEC. A unit
must see only its stdio and the sockets passed to it (systemd closes every
other descriptor), so before the first spawn every descriptor from 3 up is
made close-on-exec. Once is enough, because everything opened later is
close-on-exec already (PEP 446). spawn.py then dup2s the passed ones, which
clears the flag on the copies only.
"""

from __future__ import annotations

import fcntl
import logging
import os

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
