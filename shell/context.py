"""The context a shell command runs in: output streams, manager session, modes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from unitmgr.manager.paths import Paths, running_control_socket

if TYPE_CHECKING:
    from unitmgr.shell.render import Output
    from unitmgr.shell.session import Session


class Context:
    """The output, manager session and modes of one shell run.

    A plain class rather than a dataclass, so that `unitsh -c` does not import
    dataclasses."""

    def __init__(self, out: Output, session: Session, json: bool = False,
                 interactive: bool = False):
        self.out = out
        self.session = session
        self.json = json  # print every result as one JSON object
        self.interactive = interactive  # running in the prompt_toolkit shell


def locate_local_manager(paths: Paths) -> Paths:
    """Return `paths` with the runtime directory of the running manager when the default socket is missing.

    The state directory's lock file names the socket of a manager started
    with another XDG_RUNTIME_DIR. A message on stderr names the socket used."""
    if paths.control_socket.exists():
        return paths
    socket = running_control_socket(paths)
    if socket is None or socket == paths.control_socket:
        return paths
    print(f"unitsh: no control socket at {paths.control_socket}; using the running manager's "
          f"socket {socket} (named in {paths.state_lock_file})", file=sys.stderr)
    return paths._replace(runtime=socket.parent)
