"""The environment of a spawned process, assembled in systemd's order.

1. the manager's own environment, as it was when the manager started (a user
   manager passes it on, unlike the system manager);
2. variables the manager sets (HOME, USER, LOGNAME, SHELL, MANAGERPID,
   INVOCATION_ID, ...);
3. Environment= assignments;
4. EnvironmentFile= files, read at spawn time so an ExecStartPre= can write one;
5. UnsetEnvironment= removals.

Clients never add to it: a `unitsh` command does not carry its environment.
"""

from __future__ import annotations

import glob
import os
import pwd

from unitmgr.units.envfile import parse_environment_file
from unitmgr.units.filesize import FileTooLargeError, read_limited
from unitmgr.units.model import Unit


class EnvironmentFileError(Exception):
    """A required EnvironmentFile= could not be read."""


def manager_variables(home: str, runtime_dir: str | None) -> dict[str, str]:
    try:
        entry = pwd.getpwuid(os.getuid())
        user, shell = entry.pw_name, entry.pw_shell
    except KeyError:
        user, shell = str(os.getuid()), "/bin/sh"
    variables = {
        "HOME": home,
        "USER": user,
        "LOGNAME": user,
        "SHELL": os.environ.get("SHELL", shell),
        "MANAGERPID": str(os.getpid()),
    }
    if runtime_dir:
        variables["XDG_RUNTIME_DIR"] = runtime_dir
    variables.setdefault("PATH", os.environ.get("PATH", os.defpath))
    return variables


def _env_file_paths(entries: list[str]) -> list[tuple[str, bool]]:
    paths: list[tuple[str, bool]] = []
    for entry in entries:
        optional = entry.startswith("-")
        pattern = entry.removeprefix("-")
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            paths.extend((match, optional) for match in matches)
            if not matches and not optional:
                paths.append((pattern, False))
        else:
            paths.append((pattern, optional))
    return paths


def read_environment_files(entries: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for path, optional in _env_file_paths(entries):
        try:
            data = read_limited(path, "environment file")
        except FileTooLargeError as exc:
            raise EnvironmentFileError(f"could not read EnvironmentFile={path}: {exc.strerror}") from None
        except OSError as exc:
            if optional:
                continue
            raise EnvironmentFileError(
                f"could not read EnvironmentFile={path}: {exc.strerror}; "
                f"create it, or write EnvironmentFile=-{path} to make it optional"
            ) from None
        # Line ends as Python's text mode reads them: \r\n and \r become \n.
        text = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace("\r", "\n")
        result.update(parse_environment_file(text))
    return result


def build_environment(
    base: dict[str, str],
    manager_vars: dict[str, str],
    unit: Unit,
    extra: dict[str, str],
) -> dict[str, str]:
    env = dict(base)
    env.update(manager_vars)
    env.update(extra)
    env.update(unit.get("Service", "Environment") or {})
    env.update(read_environment_files(list(unit.get("Service", "EnvironmentFile") or [])))
    for item in unit.get("Service", "UnsetEnvironment") or []:
        name, has_value, value = item.partition("=")
        if not has_value:
            env.pop(name, None)
        elif env.get(name) == value:
            del env[name]
    return env
