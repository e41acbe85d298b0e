"""Helpers shared by the corpus tests: where the corpus is and how placeholders are filled."""

from __future__ import annotations

import csv
import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "units"

# Plausible install-time values for the build placeholders found in the corpus.
PLACEHOLDER_VALUES = {
    "bindir": "/usr/bin", "libexecdir": "/usr/libexec", "prefix": "/usr",
    "privlibexecdir": "/usr/libexec", "pkglibexecdir": "/usr/libexec", "PKGBINDIR": "/usr/bin",
    "PKGLIBEXECDIR": "/usr/libexec", "LIBEXECDIR": "/usr/libexec",
    "LIBEXEC_INSTALL_DIR": "/usr/libexec", "CMAKE_INSTALL_FULL_BINDIR": "/usr/bin",
    "CMAKE_INSTALL_FULL_LIBEXECDIR": "/usr/libexec", "CMAKE_INSTALL_PREFIX": "/usr",
    "KDE_INSTALL_FULL_BINDIR": "/usr/bin", "KDE_INSTALL_FULL_LIBEXECDIR": "/usr/libexec",
    "KDE_INSTALL_FULL_LIBEXECDIR_KF": "/usr/libexec/kf6", "QtBinariesDir": "/usr/bin",
    "PW_BINARY": "/usr/bin/pipewire", "PW_PULSE_BINARY": "/usr/bin/pipewire-pulse",
    "WP_BINARY": "/usr/bin/wireplumber", "PA_BINARY": "/usr/bin/pulseaudio",
    "PA_X11_BINARY": "/usr/bin/start-pulseaudio-x11", "PODMAN": "/usr/bin/podman",
    "systemctl": "/usr/bin/systemctl", "BIN_NAME": "uwsm", "BIN_PATH": "/usr/bin/uwsm",
    "WAITPID_BIN": "/usr/bin/waitpid", "PW_SERVICE_REQS": "",
    "address_families": "AF_UNIX", "description": "Example plugin",
    "plugin_dbus_name": "org.example.Plugin", "plugin_name": "example",
    "plugin_gate_units_section": "", "ADDRESS_BOOK_DBUS_SERVICE_NAME": "org.example.AddressBook",
    "ALARM_NOTIFY_DBUS_SERVICE_NAME": "org.example.Alarm",
    "SOURCES_DBUS_SERVICE_NAME": "org.example.Sources",
}  # fmt: skip
_PLACEHOLDER = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)@")


def manifest() -> list[dict[str, str]]:
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        notes = dict(p.split("=", 1) for p in row["notes"].split(";") if "=" in p)
        row.update(notes)
    return rows


def substitute(text: str) -> str:
    return _PLACEHOLDER.sub(lambda m: PLACEHOLDER_VALUES.get(m.group(1), m.group(0)), text)


def installed_name(saved_name: str) -> str:
    """Return the unit file name a corpus file is installed under (`x.service.in` gives `x.service`)."""
    base = saved_name.split("__")[-1]
    return base[: -len(".in")] if base.endswith(".in") else base
