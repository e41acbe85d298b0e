"""Exit statuses of `unitsh`, the LSB codes that systemctl uses.

This module names the codes and builds the `unitsh --help` table. The rule
that picks a status from a command's result is declared with each command
in `commands.py`.
"""

from __future__ import annotations

SUCCESS = 0
FAILURE = 1  # a failed job, an error from the manager, no manager running
USAGE = 2  # invalid command line
NOT_ACTIVE = 3  # status, is-active: the unit is not active
NO_SUCH_UNIT = 4  # status: the unit cannot be found
NOT_INSTALLED = 5  # start, stop, restart: the unit does not exist

# (code, meaning) rows for `unitsh --help`, in code order.
HELP_TABLE: tuple[tuple[int, str], ...] = (
    (SUCCESS, "success; status and is-active: the unit is active; is-failed: a unit failed"),
    (FAILURE, "a job failed, the manager returned an error or cannot be reached; "
              "is-failed: no unit failed"),
    (USAGE, "invalid command line"),
    (NOT_ACTIVE, "status and is-active: no unit is active"),
    (NO_SUCH_UNIT, "status: a unit cannot be found"),
    (NOT_INSTALLED, "start, stop, restart: a unit does not exist"),
)


def help_text() -> str:
    """Return the exit status table as indented lines for help output."""
    return "\n".join(f"  {code}  {meaning}" for code, meaning in HELP_TABLE)


def combine(statuses: list[int]) -> int:
    """Return the status of a sequence of commands: the last non-zero one, else 0.

    All commands run even after one fails, as with `;` in a POSIX shell, and the
    last failure decides, so a script can detect that something went wrong.
    """
    failures = [status for status in statuses if status != SUCCESS]
    return failures[-1] if failures else SUCCESS
