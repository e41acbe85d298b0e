"""The context a shell command runs in: output streams, manager session, modes."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
