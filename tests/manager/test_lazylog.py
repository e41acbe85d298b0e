"""LazyLogger: a module logger that imports logging on first use."""

from __future__ import annotations

import logging

import pytest
from unitmgr.manager.lazylog import LazyLogger


def test_lazy_logger_reaches_real_logger(caplog: pytest.LogCaptureFixture):
    log = LazyLogger("unitmgr.test.lazylog")
    with caplog.at_level(logging.DEBUG, logger="unitmgr.test.lazylog"):
        log.warning("unit %s (pid %d) failed", "web.service", 1234)
        log.debug("detail")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("unitmgr.test.lazylog", logging.WARNING, "unit web.service (pid 1234) failed"),
        ("unitmgr.test.lazylog", logging.DEBUG, "detail"),
    ]


def test_lazy_logger_follows_level_changes():
    log = LazyLogger("unitmgr.test.lazylog.level")
    logging.getLogger("unitmgr.test.lazylog.level").setLevel(logging.ERROR)
    assert not log.isEnabledFor(logging.WARNING)
    assert log.isEnabledFor(logging.ERROR)
    assert log.name == "unitmgr.test.lazylog.level"
