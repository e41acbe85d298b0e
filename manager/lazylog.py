"""A module logger that imports `logging` on its first use.

`logging` (with `traceback` and `string`) costs a few milliseconds to
import. The modules that `unitsh -c` loads log only on error
or debug paths, so they declare `log = LazyLogger(__name__)` and a
successful one-shot command never imports `logging`. Handlers, levels and
pytest's caplog use the real `logging.getLogger(name)`, because every
attribute is looked up there.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """A stand-in for `logging.getLogger(name)`, resolved on the first attribute access."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        import logging

        return getattr(logging.getLogger(self.name), attribute)
