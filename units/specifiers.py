"""`%` specifiers of unit files, resolved when a unit is loaded.

`SpecifierContext` is the data the specifiers read about the manager's user
and host; `SpecifierContext.from_environment()` gathers it once, and
`expand()` is pure. Where systemd changed a meaning after 252, the newer one
is used: `%S` is `$XDG_STATE_HOME` and `%L` is `$XDG_STATE_HOME/log`
(systemd 252 used `$XDG_CONFIG_HOME` for both), and `%D` exists.
"""

from __future__ import annotations

import grp
import os
import platform
import pwd
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from unitmgr.units.envfile import parse_environment_file
from unitmgr.units.names import unescape
from unitmgr.units.values import UnitValueError

_ARCHITECTURES = {
    "x86_64": "x86-64", "amd64": "x86-64", "i386": "x86", "i486": "x86", "i586": "x86",
    "i686": "x86", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64-le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}  # fmt: skip


@dataclass(frozen=True)
class SpecifierContext:
    """Facts about the manager's user and host that specifiers expand to."""

    user: str = "user"
    uid: int = 1000
    group: str = "user"
    gid: int = 1000
    home: str = "/home/user"
    shell: str = "/bin/sh"
    runtime_dir: str = "/run/user/1000"
    state_dir: str = "/home/user/.local/state"
    cache_dir: str = "/home/user/.cache"
    config_dir: str = "/home/user/.config"
    data_dir: str = "/home/user/.local/share"
    tmp_dir: str = "/tmp"
    hostname: str = "localhost"
    machine_id: str = ""
    boot_id: str = ""
    kernel_release: str = ""
    architecture: str = ""
    os_release: dict[str, str] = field(default_factory=dict)
    var_tmp_dir: str = "/var/tmp"
    pretty_hostname: str = ""

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SpecifierContext:
        """Gather the context for the current process's user from `env` and the host's files."""
        env = os.environ if env is None else env
        uid, gid = os.getuid(), os.getgid()
        entry = _passwd_entry(uid)
        home = env.get("HOME") or (entry.pw_dir if entry else "/")
        tmp = env.get("TMPDIR") or env.get("TEMP") or env.get("TMP")
        return cls(
            user=entry.pw_name if entry else env.get("USER", str(uid)),
            uid=uid,
            group=_group_name(gid),
            gid=gid,
            home=home,
            shell=env.get("SHELL") or (entry.pw_shell if entry else "/bin/sh"),
            runtime_dir=env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}",
            state_dir=env.get("XDG_STATE_HOME") or f"{home}/.local/state",
            cache_dir=env.get("XDG_CACHE_HOME") or f"{home}/.cache",
            config_dir=env.get("XDG_CONFIG_HOME") or f"{home}/.config",
            data_dir=env.get("XDG_DATA_HOME") or f"{home}/.local/share",
            tmp_dir=tmp or "/tmp",
            var_tmp_dir=tmp or "/var/tmp",
            hostname=socket.gethostname(),
            pretty_hostname=_read_key_file("/etc/machine-info").get("PRETTY_HOSTNAME", ""),
            machine_id=_read_id("/etc/machine-id"),
            boot_id=_read_id("/proc/sys/kernel/random/boot_id"),
            kernel_release=os.uname().release,
            architecture=_ARCHITECTURES.get(platform.machine(), platform.machine()),
            os_release=_read_key_file("/etc/os-release") or _read_key_file("/usr/lib/os-release"),
        )


def _passwd_entry(uid: int) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(uid)
    except KeyError:
        return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _read_id(path: str) -> str:
    try:
        return Path(path).read_text().strip().replace("-", "")
    except OSError:
        return ""


def _read_key_file(path: str) -> dict[str, str]:
    try:
        return parse_environment_file(Path(path).read_text())
    except (OSError, UnicodeDecodeError):
        return {}


@dataclass(frozen=True)
class UnitIdentity:
    """The unit's name and main file, as the unit-specific specifiers read them."""

    name: str
    fragment_path: str = ""

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def prefix(self) -> str:
        return self.stem.split("@", 1)[0]

    @property
    def instance(self) -> str:
        return self.stem.split("@", 1)[1] if "@" in self.stem else ""


def _last_component(prefix: str) -> str:
    return prefix.rsplit("-", 1)[-1] if "-" in prefix else prefix


def _file_specifier(unit: UnitIdentity) -> str:
    if "@" in unit.stem:
        return "/" + unescape(unit.instance, path=True).lstrip("/")
    return "/" + unescape(unit.prefix, path=True).lstrip("/")


Resolver = Callable[[UnitIdentity, SpecifierContext], str]

_RESOLVERS: dict[str, Resolver] = {
    "n": lambda u, c: u.name,
    "N": lambda u, c: u.stem,
    "p": lambda u, c: u.prefix,
    "P": lambda u, c: unescape(u.prefix),
    "i": lambda u, c: u.instance,
    "I": lambda u, c: unescape(u.instance),
    "j": lambda u, c: _last_component(u.prefix),
    "J": lambda u, c: unescape(_last_component(u.prefix)),
    "f": lambda u, c: _file_specifier(u),
    "u": lambda u, c: c.user,
    "U": lambda u, c: str(c.uid),
    "g": lambda u, c: c.group,
    "G": lambda u, c: str(c.gid),
    "h": lambda u, c: c.home,
    "s": lambda u, c: c.shell,
    "t": lambda u, c: c.runtime_dir,
    "S": lambda u, c: c.state_dir,
    "C": lambda u, c: c.cache_dir,
    "L": lambda u, c: f"{c.state_dir}/log",
    "E": lambda u, c: c.config_dir,
    "D": lambda u, c: c.data_dir,
    "T": lambda u, c: c.tmp_dir,
    "V": lambda u, c: c.var_tmp_dir,
    "d": lambda u, c: f"{c.runtime_dir}/credentials/{u.name}",
    "y": lambda u, c: u.fragment_path,
    "Y": lambda u, c: os.path.dirname(u.fragment_path),
    "H": lambda u, c: c.hostname,
    "l": lambda u, c: c.hostname.split(".", 1)[0],
    "q": lambda u, c: c.pretty_hostname or c.hostname.split(".", 1)[0],
    "m": lambda u, c: c.machine_id,
    "b": lambda u, c: c.boot_id,
    "v": lambda u, c: c.kernel_release,
    "a": lambda u, c: c.architecture,
    "o": lambda u, c: c.os_release.get("ID", ""),
    "w": lambda u, c: c.os_release.get("VERSION_ID", ""),
    "W": lambda u, c: c.os_release.get("VARIANT_ID", ""),
    "B": lambda u, c: c.os_release.get("BUILD_ID", ""),
    "M": lambda u, c: c.os_release.get("IMAGE_ID", ""),
    "A": lambda u, c: c.os_release.get("IMAGE_VERSION", ""),
    "%": lambda u, c: "%",
}

SPECIFIERS = frozenset(_RESOLVERS)


def expand(text: str, unit: UnitIdentity, context: SpecifierContext) -> str:
    """Replace every `%x` in `text`; raise UnitValueError for an unknown or dangling one."""
    if "%" not in text:
        return text
    out: list[str] = []
    index = 0
    while True:
        found = text.find("%", index)
        if found < 0:
            out.append(text[index:])
            return "".join(out)
        out.append(text[index:found])
        letter = text[found + 1 : found + 2]
        if not letter:
            # systemd 252 keeps a lone % at the very end as it is.
            out.append("%")
            return "".join(out)
        resolver = _RESOLVERS.get(letter)
        if resolver is None:
            raise UnitValueError(
                f"Failed to resolve unit specifiers in '{text}': unknown specifier %{letter}; "
                "write %% for a literal %"
            )
        out.append(resolver(unit, context))
        index = found + 2
