"""The context a shell command runs in: output streams, manager session, modes."""

from __future__ import annotations

from dataclasses import dataclass

from unitmgr.shell.render import Output
from unitmgr.shell.session import Session


@dataclass
class Context:
    out: Output
    session: Session
    json: bool = False  # print every result as one JSON object
    interactive: bool = False  # running in the prompt_toolkit shell
