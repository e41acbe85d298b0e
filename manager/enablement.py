"""Enabling units: the links `systemctl --user enable` writes, and the words of `is-enabled`.

Enabling reads a unit's `[Install]` section and links the unit file into the
first directory of the search path (the user's config units dir, or the
first `--units DIR`), as systemd 252 does in `~/.config/systemd/user`:

| `[Install]`          | link written                                  |
|----------------------|-----------------------------------------------|
| `WantedBy=T`         | `T.wants/UNIT -> unit file`                   |
| `RequiredBy=T`       | `T.requires/UNIT -> unit file`                |
| `Alias=A`            | `A -> unit file` (same type suffix)           |
| `Also=U`             | `U` is enabled (or disabled) as well          |
| `DefaultInstance=I`  | a template enabled without instance means `@I`|

Disabling removes every link in that directory (and its `.wants/`,
`.requires/` folders) whose own name, or whose target's file name, is the
unit or one of its `Also=` units. Links to /dev/null (masks) stay.
The manager reads new links at its next start; nothing here touches a
running unit. Only files are read and written, so this works without a
running manager too (tests/units/test_enablement.py compares it with
`systemctl --global --root=DIR enable`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from unitmgr.units import names
from unitmgr.units.assign import INSTALL_SPECIFIER_MESSAGE
from unitmgr.units.builtin import BUILTIN_UNITS
from unitmgr.units.loader import DEV_NULL, UnitLoader, alias_unit, is_mask
from unitmgr.units.model import Unit
from unitmgr.units.specifiers import SpecifierContext

log = logging.getLogger(__name__)

DEPENDENCY_FOLDERS = (("WantedBy", ".wants"), ("RequiredBy", ".requires"))
LINK_FOLDER_SUFFIXES = (".wants", ".requires", ".upholds")

# is-enabled words that exit 0; every other word exits 1, except not-found (4).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "indirect", "alias",
                            "generated", "transient"})
NOT_FOUND_EXIT = 4

STATIC_NOTE = (
    "The unit files have no installation config (WantedBy=, RequiredBy=, Also=, Alias= "
    "settings in the [Install] section, and DefaultInstance= for template units), so "
    "enable has nothing to link. Such a unit runs when another unit wants or requires "
    "it, or when it is started by name; a template needs an instance name, as in "
    "'enable NAME@INSTANCE'."
)


def is_enabled_exit(state: str) -> int:
    """Return systemctl's exit status for one is-enabled word."""
    if state == "not-found":
        return NOT_FOUND_EXIT
    return 0 if state in ENABLED_STATES else 1


@dataclass(frozen=True)
class LinkChange:
    """One link written or removed, printed the way systemctl prints it."""

    action: str  # "created" or "removed"
    path: str
    target: str = ""

    def __str__(self) -> str:
        if self.action == "created":
            return f"Created symlink {self.path} \u2192 {self.target}."
        return f'Removed "{self.path}".'

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "path": self.path, "target": self.target}


@dataclass
class EnableReport:
    """The result of enable or disable: the links changed and systemctl's messages."""

    changes: list[LinkChange] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ok: bool = True

    def fail(self, message: str) -> None:
        self.messages.append(message)
        self.ok = False

    def lines(self) -> list[str]:
        return [str(change) for change in self.changes] + self.messages

    def to_json(self) -> dict[str, object]:
        return {"changes": [c.to_json() for c in self.changes], "messages": self.messages,
                "ok": self.ok, "lines": self.lines()}


def _link_target(path: Path) -> str:
    """Return the file a new link points at: the unit file, or what a linked unit file links to."""
    if path.is_symlink():
        return os.path.realpath(path)
    return str(path.absolute())


class Enablement:
    """enable, disable and is-enabled over one unit search path (highest priority first)."""

    def __init__(self, search_path: list[Path], context: SpecifierContext) -> None:
        if not search_path:
            raise ValueError("the unit search path is empty; give at least one unit directory")
        self.search_path = [Path(p) for p in search_path]
        self.config_dir = self.search_path[0]
        self.context = context

    def _loader(self) -> UnitLoader:
        # A fresh loader each time: enablement reads the files as they are on disk now.
        return UnitLoader(self.search_path, self.context)

    @staticmethod
    def _locate(loader: UnitLoader, name: str) -> Path | None:
        path = loader.find_file(name)
        template = names.template_of(name)
        if path is None and template:
            path = loader.find_file(template)
        return path

    # -- is-enabled -------------------------------------------------------

    def states(self, unit_names: list[str]) -> list[str]:
        """Return the is-enabled word of each name, reading the search path once for all of them."""
        links = LinkIndex(self.search_path, self._loader())
        return [self.state(name, links=links) for name in unit_names]

    def state(self, name: str, _seen: frozenset[str] = frozenset(), links: LinkIndex | None = None) -> str:
        """Return systemctl's is-enabled word for `name` ("web" means web.service).

        `links`, from states(), serves many names from one reading of the search path.
        """
        name = names.complete_name(name)
        if not names.is_valid_name(name):
            return "not-found"
        if links is None:
            links = LinkIndex(self.search_path, self._loader())
        loader = links.loader
        path = self._locate(loader, name)
        if path is None:
            return "static" if name in BUILTIN_UNITS else "not-found"
        if is_mask(path):
            return "masked"
        alias = loader.alias_target(path)
        real = None
        if alias is not None and names.is_instance(name):
            real = alias_unit(name, alias, names.template_of(name))
        # An instance linked to its own template (u@2.service -> u@.service) is no alias:
        # the link only provides the instance's unit file.
        if alias is not None and real != name:
            if real is None or real in _seen:
                return "alias"
            return self.state(real, _seen | {name}, links)
        if links.enables(name):
            return "enabled"
        if path.is_symlink() and not loader.in_search_path(Path(os.path.realpath(path))):
            return "linked"
        install = loader.load(name).settings.get("Install", {})
        if install.get("WantedBy") or install.get("RequiredBy") or install.get("Alias"):
            return "disabled"
        return "indirect" if install.get("Also") else "static"

    # -- enable -----------------------------------------------------------

    def enable(self, unit_names: list[str]) -> EnableReport:
        """Write the links of each unit's [Install] section (and of its Also= units)."""
        report = EnableReport()
        loader = self._loader()
        seen: set[str] = set()
        had_rules = False
        for name in unit_names:
            had_rules |= self._enable_one(loader, names.complete_name(name), report, seen)
        if report.ok and not had_rules and not report.changes:
            report.messages.append(STATIC_NOTE)
        return report

    def _enable_one(self, loader: UnitLoader, name: str, report: EnableReport,
                    seen: set[str], auxiliary: bool = False) -> bool:
        """Enable one unit; return whether its [Install] section names links to write.

        An `auxiliary` unit (named by Also=) that does not exist is skipped with a note.
        """
        if name in seen:
            return False
        seen.add(name)
        if not names.is_valid_name(name):
            report.fail(f"Failed to enable unit: unit name {name} is not valid; "
                        "write a name such as web.service or worker@1.service.")
            return False
        path = self._locate(loader, name)
        if path is None and auxiliary:
            report.messages.append(f"Failed to enable auxiliary unit {name}, ignoring.")
            return False
        if path is None:
            report.fail(f"Failed to enable unit, unit {name} does not exist.")
            return False
        if is_mask(path):
            report.fail(f"Failed to enable unit, unit {path} is masked.")
            return False
        if loader.alias_target(path) is not None:
            report.fail(f"Failed to enable unit, refusing to operate on alias name or linked "
                        f"unit file {name}; enable the unit it names instead.")
            return False
        unit, linked_name = self._install_unit(loader, name)
        if any(d.section == "Install" and INSTALL_SPECIFIER_MESSAGE in d.message
               for d in unit.diagnostics):
            report.fail(f'Failed to enable unit, invalid specifier in "{name}".')
            return False
        install = unit.settings.get("Install", {})
        target = _link_target(path)
        self._write_aliases(name, install.get("Alias", []), target, report)
        self._write_dependencies(name, linked_name, install, target, report)
        had_rules = any(install.get(key) for key in ("Alias", "WantedBy", "RequiredBy"))
        for also in install.get("Also", []):
            had_rules |= self._enable_one(loader, also, report, seen, auxiliary=True)
        return had_rules

    @staticmethod
    def _install_unit(loader: UnitLoader, name: str) -> tuple[Unit, str]:
        """Return the unit whose [Install] applies and the name its links carry.

        A template enabled without an instance uses DefaultInstance=, also for
        the specifiers (%i) in its [Install] section.
        """
        unit = loader.load(name)
        default = unit.settings.get("Install", {}).get("DefaultInstance")
        if names.is_template(name) and default:
            instance = names.instance_name(name, default)
            return loader.load(instance), instance
        return unit, name

    def _write_aliases(self, name: str, aliases: list[str], target: str,
                       report: EnableReport) -> None:
        instance = names.split_name(name)[1]
        for alias in aliases:
            if not _valid_alias(name, alias):
                report.fail(f"Failed to enable unit, cannot alias {name} as {alias}.")
                continue
            link_name = alias
            if instance and names.is_template(alias):
                link_name = names.instance_name(alias, instance)
            self._link(self.config_dir / link_name, target, report)

    def _write_dependencies(self, name: str, linked_name: str, install: dict,
                            target: str, report: EnableReport) -> None:
        for key, suffix in DEPENDENCY_FOLDERS:
            for dependent in install.get(key, []):
                if names.is_template(linked_name) and not names.is_template(dependent):
                    report.fail(f"Failed to enable {name}, destination unit {dependent} is a "
                                "non-template unit.")
                    continue
                self._link(self.config_dir / f"{dependent}{suffix}" / linked_name, target, report)

    @staticmethod
    def _link(link: Path, target: str, report: EnableReport) -> None:
        if link.is_symlink():
            current = os.readlink(link)
            if current != target:
                report.fail(f"Failed to enable unit: File {link} already exists and is a "
                            f"symlink to {current}. Run disable first, or remove the link.")
            return
        if link.exists():
            report.fail(f"Failed to enable unit: File {link} already exists. Move it away "
                        "and enable again.")
            return
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)
        except OSError as error:
            report.fail(f"Failed to enable unit: cannot create {link}: {error.strerror}.")
            return
        report.changes.append(LinkChange("created", str(link), target))

    # -- disable ----------------------------------------------------------

    def disable(self, unit_names: list[str]) -> EnableReport:
        """Remove the links that enable `unit_names` and their Also= units."""
        report = EnableReport()
        loader = self._loader()
        marked: set[str] = set()
        for raw in unit_names:
            name = names.complete_name(raw)
            path = self._locate(loader, name) if names.is_valid_name(name) else None
            if path is None:
                # systemctl reports this and still exits 0.
                report.messages.append(f"Failed to disable unit, unit {name} does not exist.")
                continue
            if is_mask(path):
                report.messages.append(f"Unit {path} is masked, ignoring.")
                continue
            self._mark(loader, name, marked)
        for link in self._links_to_remove(marked):
            try:
                link.unlink()
            except OSError as error:
                report.fail(f"Failed to disable unit: cannot remove {link}: {error.strerror}.")
                continue
            report.changes.append(LinkChange("removed", str(link)))
        return report

    def _mark(self, loader: UnitLoader, name: str, marked: set[str]) -> None:
        if name in marked or not names.is_valid_name(name):
            return
        marked.add(name)
        if self._locate(loader, name) is None:
            return
        unit, _ = self._install_unit(loader, name)
        for also in unit.settings.get("Install", {}).get("Also", []):
            self._mark(loader, also, marked)

    def _links_to_remove(self, marked: set[str]) -> list[Path]:
        found = []
        folders = [self.config_dir, *_link_folders(self.config_dir)]
        for folder in folders:
            for entry, link in _links_in(folder):
                if os.readlink(link) == DEV_NULL:
                    continue
                if entry in marked or _target_name(link) in marked:
                    found.append(link)
        return found


# -- directory helpers ---------------------------------------------------------

def _links_in(directory: Path) -> list[tuple[str, Path]]:
    """Return the (name, path) of the symlinks with unit names in `directory`, sorted."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for entry in entries:
        path = directory / entry
        if names.is_valid_name(entry) and path.is_symlink():
            found.append((entry, path))
    return found


def _link_folders(directory: Path) -> list[Path]:
    """Return the `.wants/`, `.requires/` and `.upholds/` folders of one search directory."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    return [directory / e for e in entries
            if e.endswith(LINK_FOLDER_SUFFIXES) and (directory / e).is_dir()]


class LinkIndex:
    """The links of a search path, read once, and the loader they were read with."""

    def __init__(self, search_path: list[Path], loader: UnitLoader) -> None:
        self.loader = loader
        # Names that an alias link in a search directory points at, where the link has another name.
        self.alias_targets: set[str] = set()
        # The entries of .wants/, .requires/ and .upholds/ folders, their templates and link targets.
        self.entries: set[str] = set()
        self.entry_templates: set[str] = set()
        self.entry_targets: set[str] = set()
        for directory in search_path:
            for entry, link in _links_in(directory):
                target = _target_name(link)
                if target != entry:
                    self.alias_targets.add(target)
            for folder in _link_folders(directory):
                for entry, link in _links_in(folder):
                    self.entries.add(entry)
                    self.entry_templates.add(names.template_of(entry) or "")
                    self.entry_targets.add(_target_name(link))

    def enables(self, name: str) -> bool:
        """Return whether a link in some search directory enables `name`."""
        if name in self.alias_targets or name in self.entries:
            return True
        if names.is_template(name):
            return name in self.entry_templates
        return not names.is_instance(name) and name in self.entry_targets


def _target_name(link: Path) -> str:
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return ""


def _valid_alias(name: str, alias: str) -> bool:
    """Return whether `alias` may name `name`: same type, template for template, plain for plain."""
    if not names.is_valid_name(alias) or names.unit_type(alias) != names.unit_type(name):
        return False
    if names.split_name(name)[1] is None:
        return "@" not in alias
    return names.is_template(alias)
