"""Finding and loading units along a search path: fragments, templates, drop-ins, aliases, masks.

Only reads files. The search path is a list of directories, highest
priority first. The first directory that has a unit's file name wins, but
drop-ins and `.wants/`/`.requires/` entries are merged from all of them.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from unitmgr.units import names
from unitmgr.units.assign import UnitAssigner
from unitmgr.units.builtin import BUILTIN_PATH_PREFIX, BUILTIN_UNITS
from unitmgr.units.defaults import ManagerDefaults
from unitmgr.units.directives import SECTIONS_BY_TYPE
from unitmgr.units.filesize import read_limited
from unitmgr.units.model import Diagnostic, Unit
from unitmgr.units.specifiers import SpecifierContext
from unitmgr.units.syntax import lex
from unitmgr.units.validate import check_unit

log = logging.getLogger(__name__)

DEV_NULL = "/dev/null"


def build_unit(
    name: str,
    fragment: tuple[str, str] | None,
    dropins: list[tuple[str, str]],
    context: SpecifierContext,
    defaults: ManagerDefaults | None = None,
) -> Unit:
    """Parse a fragment `(path, text)` and its drop-ins into a Unit named `name`.

    `defaults` are the manager's defaults the unit falls back to (units/defaults.py).
    """
    kind = names.unit_type(name)
    unit = Unit(name=name, kind=kind, fragment_path=fragment[0] if fragment else None,
                defaults=defaults)
    unit.dropin_paths = [path for path, _ in dropins]
    sections = SECTIONS_BY_TYPE.get(kind, ("Unit", "Install"))
    assigner = UnitAssigner(unit, context)
    for path, text in ([fragment] if fragment else []) + dropins:
        result = lex(text, path, sections)
        unit.diagnostics.extend(result.diagnostics)
        if result.fatal:
            unit.diagnostics.append(result.fatal)
            return _refuse(unit, str(result.fatal))
        for section, keys in result.extra_sections.items():
            stored = unit.settings.setdefault(section, {})
            for key, values in keys.items():
                stored.setdefault(key, []).extend(values)
        for item in result.assignments:
            assigner.apply(item)

    errors = unit.errors
    if errors:
        return _refuse(unit, str(errors[0]))
    problem = check_unit(unit)
    if problem:
        diagnostic = Diagnostic(fragment[0] if fragment else name, 0, "", "", problem, "error")
        unit.diagnostics.append(diagnostic)
        return _refuse(unit, str(diagnostic))
    return unit


def _refuse(unit: Unit, reason: str) -> Unit:
    unit.load_state = "bad-setting"
    unit.load_error = reason
    return unit


# Directory mtimes come from a coarse clock, and some file systems store whole
# seconds only. A file created within this long after a listing can leave the
# directory's mtime equal to the mtime recorded with that listing.
MTIME_GRANULARITY_NS = 1_000_000_000


@dataclass
class _DirectoryIndex:
    """The entries of one search directory, read once."""

    path: Path
    entries: set[str] = field(default_factory=set)
    # The entries that are symbolic links, from the directory's own entry types.
    links: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _ListingStamp:
    """The mtimes of the search directories when they were listed, and the time of the listing."""

    mtimes_ns: tuple[int | None, ...]
    listed_at_ns: int

    def is_current(self, mtimes_ns: tuple[int | None, ...]) -> bool:
        """Return whether a listing with this stamp still matches directories with `mtimes_ns`.

        A listing taken less than MTIME_GRANULARITY_NS after a directory's mtime
        may have missed a file created in the same clock tick, so it is not current.
        """
        if mtimes_ns != self.mtimes_ns:
            return False
        newest = max((m for m in mtimes_ns if m is not None), default=None)
        return newest is None or self.listed_at_ns - newest >= MTIME_GRANULARITY_NS


def _directory_mtimes(search_path: list[Path]) -> tuple[int | None, ...]:
    """Return each directory's mtime in nanoseconds, None for a missing or unreadable one."""
    mtimes: list[int | None] = []
    for directory in search_path:
        try:
            mtimes.append(os.stat(directory).st_mtime_ns)
        except OSError:
            mtimes.append(None)
    return tuple(mtimes)


def file_stamps(unit: Unit, unit_dirs: list[Path]) -> tuple[int, ...]:
    """Return the modification times of a unit's fragment, drop-ins and drop-in folders (0 when missing).

    The paths are left out because they follow from `unit` and `unit_dirs`. So two results
    for the same definition compare time by time, and each runtime keeps only numbers."""
    paths = [unit.fragment_path or "", *unit.dropin_paths]
    for directory in unit_dirs:
        paths.append(os.path.join(directory, f"{unit.name}.d"))
        if unit.fragment_path is None:
            # A unit without a file yet: creating one is a change.
            paths.append(os.path.join(directory, unit.name))
    stamps = []
    for path in paths:
        if not path or path.startswith("<"):
            continue
        try:
            stamps.append(os.stat(path).st_mtime_ns)
        except OSError:
            stamps.append(0)
    return tuple(stamps)


# The key in Unit.derived of the stamps a unit preload has just checked (manager/preload.py).
CHECKED_STAMPS = "checked_stamps"


def stamps_on_load(unit: Unit, unit_dirs: list[Path]) -> tuple[int, ...]:
    """Return file_stamps() of a unit just loaded, taking once the stamps a preload checked instead of new stats."""
    checked = unit.derived.pop(CHECKED_STAMPS, None)
    return checked if checked is not None else file_stamps(unit, unit_dirs)


def _read_text(path: Path) -> str:
    return read_limited(path).decode("utf-8", "replace")


def is_mask(path: Path | str) -> bool:
    """Return whether `path` masks a unit: a link to /dev/null or an empty file.

    As systemd does, any character device counts as /dev/null, which costs
    one stat where resolving the link took one per path component.
    """
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_size == 0)


class UnitLoader:
    """Loads units by name from `search_path`, caching the results until `invalidate()`.

    A loaded unit stays cached as read. A unit that was not found is looked up
    again when a search directory's mtime changed since the directories were
    listed (refresh_listing()), as systemd 246 and later do without daemon-reload.
    """

    def __init__(self, search_path: list[Path], context: SpecifierContext,
                 defaults: ManagerDefaults | None = None) -> None:
        self.search_path = [Path(p) for p in search_path]
        self.context = context
        self.defaults = defaults
        self._cache: dict[str, Unit] = {}
        # Names that no file or built-in provides. They are kept as names rather than Units
        # because the manager looks up NAME.socket for every service it starts.
        self._missing: set[str] = set()
        self._index: list[_DirectoryIndex] | None = None
        self._aliases: dict[str, list[str]] | None = None
        self._names: list[str] | None = None
        self._stamp: _ListingStamp | None = None
        # Counts the directory listings taken, so callers can tell when names() changed.
        self.listing_generation = 0
        # Units another process loaded with this loader's settings (manager/preload.py), taken by load().
        self._adopted: dict[str, Unit] = {}

    def invalidate(self) -> None:
        """Drop every cached unit, directory listing and name list (daemon-reload)."""
        self._cache.clear()
        self._adopted.clear()
        self._missing.clear()
        self._drop_listing()

    def _drop_listing(self) -> None:
        self._index = None
        self._aliases = None
        self._names = None
        self._stamp = None

    def refresh_listing(self) -> bool:
        """Drop the directory listing if a search directory changed since it was taken.

        Costs one stat per search directory. Returns whether the listing was
        dropped; the units cached as not found are dropped with it, and every
        loaded unit stays as read. New files inside existing `.d/`, `.wants/`
        and `.requires/` folders need no check here, because load() lists those
        folders whenever it reads a unit.
        """
        if self._index is None or self._stamp is None:
            return False
        if self._stamp.is_current(_directory_mtimes(self.search_path)):
            return False
        log.debug("a unit directory changed since it was listed; listing %s again",
                  ", ".join(str(d) for d in self.search_path))
        self._drop_listing()
        self._missing.clear()
        for name in [n for n, unit in self._cache.items() if unit.load_state == "not-found"]:
            del self._cache[name]
        return True

    # -- Directory scanning -----------------------------------------------------

    def _directories(self) -> list[_DirectoryIndex]:
        if self._index is None:
            # The stamp is taken before the listing, so a file created while
            # listing makes the next refresh_listing() list again.
            self._stamp = _ListingStamp(_directory_mtimes(self.search_path), time.time_ns())
            self.listing_generation += 1
            self._index = []
            for directory in self.search_path:
                try:
                    with os.scandir(directory) as scan:
                        listed = [(entry.name, entry.is_symlink()) for entry in scan]
                except OSError:
                    continue
                entries = {name for name, _link in listed}
                links = {name for name, link in listed if link}
                self._index.append(_DirectoryIndex(directory, entries, links))
        return self._index

    def _alias_index(self) -> dict[str, list[str]]:
        """Return, for each unit name, the alias links that point at it in the search path."""
        if self._aliases is None:
            self._aliases = {}
            for directory in self._directories():
                # Only a link can be an alias.
                for entry in sorted(directory.links):
                    if not names.is_valid_name(entry):
                        continue
                    target = self._alias_target(directory.path / entry)
                    if target is not None and entry not in self._aliases.get(target, []):
                        self._aliases.setdefault(target, []).append(entry)
        return self._aliases

    def listing(self) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
        """Return the current directory listing, comparable with another loader's: (path, entries, links)."""
        return tuple((str(d.path), frozenset(d.entries), frozenset(d.links)) for d in self._directories())

    def adopt(self, units: dict[str, Unit]) -> None:
        """Take `units`, loaded elsewhere with this loader's search path, context and defaults, for load().

        The caller checks that the files have not changed since (manager/preload.py)."""
        self._adopted = dict(units)

    def drop_adopted(self) -> None:
        """Forget the adopted units that load() has not returned yet."""
        self._adopted = {}

    def names(self) -> list[str]:
        """Return every unit file name in the search path (templates included) and the built-ins.

        Computed from the cached directory listings, so it changes only after
        `invalidate()` or a `refresh_listing()` that found a changed directory.
        """
        if self._names is None:
            found: set[str] = set(BUILTIN_UNITS)
            for directory in self._directories():
                found.update(e for e in directory.entries if names.is_valid_name(e))
            self._names = sorted(found)
        return list(self._names)

    def _find_file(self, name: str) -> Path | None:
        found = self._locate(name)
        return found[0] if found is not None else None

    def _locate(self, name: str) -> tuple[Path, bool, bool] | None:
        """Return the file (or link) that provides `name`, whether it masks the unit, and whether it is a link.

        One lstat distinguishes a plain unit file, the usual case, from a link:
        only a link costs the stat and readlink that masks and aliases need."""
        for directory in self._directories():
            if name not in directory.entries:
                continue
            candidate = directory.path / name
            try:
                info = os.lstat(candidate)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                return candidate, is_mask(candidate), True
            if stat.S_ISREG(info.st_mode):
                return candidate, info.st_size == 0, False
            if stat.S_ISCHR(info.st_mode):
                return candidate, True, False
        return None

    def listed(self, name: str) -> bool:
        """Return whether `name` or its template is a loaded unit or in the current listing.

        Unlike load(), it does not stat the search directories for changes. A
        file added since the last listing appears after a miss elsewhere or a
        daemon-reload, as in systemd, which reads new unit files at daemon-reload.
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached.load_state != "not-found"
        if name in self._missing:
            return False
        template = names.template_of(name)
        return any(name in d.entries or (template is not None and template in d.entries)
                   for d in self._directories())

    def find_file(self, name: str) -> Path | None:
        """Return the file (or link) that provides `name` in the search path, without templates."""
        return self._find_file(name)

    def alias_target(self, link: Path) -> str | None:
        """Return the unit name `link` aliases, or None when it is no alias (enable, is-enabled)."""
        return self._alias_target(link)

    def in_search_path(self, path: Path) -> bool:
        """Return whether `path` lies directly in one of the search directories."""
        parent = os.path.realpath(path.parent)
        return any(parent == os.path.realpath(d.path) for d in self._directories())

    def _alias_target(self, link: Path) -> str | None:
        """Return the unit name `link` aliases, or None for a linked unit file or no link."""
        try:
            target = os.readlink(link)
        except OSError:
            return None
        target_name = os.path.basename(target)
        if target_name == link.name or not names.is_valid_name(target_name):
            return None
        resolved = os.path.realpath(link.parent / target)
        in_search_path = any(
            os.path.dirname(resolved) == os.path.realpath(d.path) for d in self._directories()
        )
        return target_name if ("/" not in target or in_search_path) else None

    # -- Loading ----------------------------------------------------------------

    def load(self, name: str) -> Unit:
        """Return the unit `name`, reporting a bad or missing unit in its load_state.

        Only a miss (load_state "not-found") costs the directory stats of refresh_listing().
        """
        cached = self._cache.get(name)
        if cached is not None:
            if cached.load_state != "not-found" or not self.refresh_listing():
                return cached
        elif name in self._missing and not self.refresh_listing():
            return _not_found(name)
        adopted = self._adopted.pop(name, None)
        if adopted is not None:
            self._cache[name] = adopted
            return adopted
        listed_before = self._index is not None
        unit = self._load_uncached(name, seen=set())
        # A listing taken by this very call is current, so only an older one is checked.
        if unit.load_state == "not-found" and listed_before and self.refresh_listing():
            unit = self._load_uncached(name, seen=set())
        if unit.load_state == "not-found" and unit.name == name and unit.fragment_path is None:
            self._cache.pop(name, None)
            self._missing.add(name)
        else:
            self._cache[name] = unit
        return unit

    def _load_uncached(self, name: str, seen: set[str]) -> Unit:
        if not names.is_valid_name(name):
            return Unit(name=name, kind=names.unit_type(name), load_state="error",
                        load_error=f"Invalid unit name '{name}'; write a full name such as "
                                   "web.service or worker@1.service")
        seen.add(name)
        found = self._locate(name)
        template = names.template_of(name)
        if found is None and template:
            found = self._locate(template)
        path = found[0] if found is not None else None
        if found is not None:
            path, masked, is_link = found
            if masked:
                return Unit(name=name, kind=names.unit_type(name), fragment_path=str(path),
                            load_state="masked", load_error=f"Unit {name} is masked.")
            alias = self._alias_target(path) if is_link else None
            real = alias_unit(name, alias, template) if alias is not None else None
            # A name already on the way (a cycle of aliases, or an instance linked to its own
            # template, as in u@2.service -> u@.service) is read as a unit file.
            if real is not None and real not in seen:
                return self._load_alias(name, real, seen)
        return self._load_fragment(name, path)

    def _load_alias(self, name: str, real: str, seen: set[str]) -> Unit:
        # Pass `seen` along: a fresh load() would restart the cycle check and
        # recurse forever on aliases that point at each other.
        unit = self._cache.get(real)
        if unit is None:
            unit = self._load_uncached(real, seen)
            self._cache[real] = unit
        if name not in unit.aliases:
            # An alias written as a bare name may not be in the directory index.
            unit.aliases.append(name)
        return unit

    def _load_fragment(self, name: str, path: Path | None) -> Unit:
        fragment: tuple[str, str] | None = None
        if path is not None:
            try:
                fragment = (str(path), _read_text(path))
            except OSError as error:
                return Unit(name=name, kind=names.unit_type(name), fragment_path=str(path),
                            load_state="error",
                            load_error=f"Failed to read {path}: {error.strerror}")
        elif name in BUILTIN_UNITS:
            fragment = (BUILTIN_PATH_PREFIX + name, BUILTIN_UNITS[name])
        else:
            return _not_found(name)
        aliases = self._aliases_of(name)
        unit = build_unit(name, fragment, self._dropins(name, aliases), self.context,
                          self.defaults)
        # The user cannot change a built-in unit, so its "not supported" warnings are noise.
        unit.diagnostics = [
            d for d in unit.diagnostics if not d.path.startswith(BUILTIN_PATH_PREFIX)
        ]
        unit.aliases = aliases
        unit.extra_wants = self._dependency_entries(name, ".wants")
        unit.extra_requires = self._dependency_entries(name, ".requires")
        return unit

    # -- Drop-ins and .wants/.requires ------------------------------------------

    def _dropin_names(self, name: str) -> list[str]:
        """Return the unit names whose `.d/` folders apply to `name`, most specific first."""
        prefix, instance, kind = names.split_name(name)
        candidates = [name]
        if instance:
            candidates.append(f"{prefix}@.{kind}")
        stem = prefix
        while "-" in stem.rstrip("-"):
            stem = stem.rstrip("-").rsplit("-", 1)[0] + "-"
            candidates.append(f"{stem}.{kind}")
        candidates.append(kind)
        return candidates

    def _aliases_of(self, name: str) -> list[str]:
        """Return the alias names of `name`, including instances of an aliased template."""
        index = self._alias_index()
        found = list(index.get(name, []))
        template = names.template_of(name)
        if template:
            instance = names.split_name(name)[1] or ""
            found += [names.instance_name(a, instance) for a in index.get(template, [])
                      if names.is_template(a)]
        return found

    def _dropins(self, name: str, aliases: list[str] | None = None) -> list[tuple[str, str]]:
        candidates = self._dropin_names(name)
        for alias in aliases or []:
            candidates += [c for c in self._dropin_names(alias) if c not in candidates]
        chosen: dict[str, Path] = {}
        for directory in self._directories():
            for candidate in candidates:
                folder = candidate + ".d"
                if folder not in directory.entries:
                    continue
                try:
                    files = sorted(os.listdir(directory.path / folder))
                except OSError:
                    continue
                for file_name in files:
                    if file_name.endswith(".conf") and file_name not in chosen:
                        chosen[file_name] = directory.path / folder / file_name
        result = []
        for file_name in sorted(chosen):
            path = chosen[file_name]
            # A drop-in linked to /dev/null masks lower ones of its name; systemd lists it, and
            # reading it gives no settings.
            try:
                result.append((str(path), _read_text(path)))
            except OSError as error:
                log.warning("read: %s (skipped drop-in: %s)", path, error.strerror)
        return result

    def _dependency_entries(self, name: str, suffix: str) -> list[str]:
        instance = names.split_name(name)[1]
        folders = [name + suffix]
        template = names.template_of(name)
        if template:
            folders.append(template + suffix)
        found: list[str] = []
        for directory in self._directories():
            for folder in folders:
                if folder not in directory.entries:
                    continue
                try:
                    # The type from the directory entry saves an lstat per link.
                    with os.scandir(directory.path / folder) as scan:
                        links = sorted((e.name, e.path) for e in scan if e.is_symlink())
                except OSError:
                    continue
                for entry, link in links:
                    # systemd 252 reads only symlinks here, and skips links to /dev/null.
                    if not names.is_valid_name(entry) or is_mask(link):
                        continue
                    if instance and names.is_template(entry):
                        entry = names.instance_name(entry, instance)
                    if entry not in found:
                        found.append(entry)
        return found

    def wanted_by(self, target: str) -> list[str]:
        """Return the units in `target.wants/` and `target.requires/` of every search directory."""
        wants = self._dependency_entries(target, ".wants")
        requires = self._dependency_entries(target, ".requires")
        return wants + [n for n in requires if n not in wants]


def alias_unit(name: str, alias: str, template: str | None) -> str:
    """Return the unit that the alias link `name` (found as itself or as its `template`) names.

    An instance of an aliased template is the same instance of the target template.
    """
    if template and names.is_template(alias):
        return names.instance_name(alias, names.split_name(name)[1] or "")
    return alias


def _not_found(name: str) -> Unit:
    """Return a new Unit for a name that no file or built-in provides."""
    return Unit(name=name, kind=names.unit_type(name), load_state="not-found", load_error=f"Unit {name} not found.")


def load_file(path: Path, context: SpecifierContext, name: str | None = None) -> Unit:
    """Load one unit file by path, with the drop-ins in `<path>.d/` next to it (for verify)."""
    unit_name = name or path.name
    if not names.is_valid_name(unit_name):
        return Unit(name=unit_name, kind=names.unit_type(unit_name), fragment_path=str(path),
                    load_state="error",
                    load_error=f"Invalid unit name '{unit_name}'; a unit file name looks like "
                               "web.service or worker@.service")
    try:
        text = _read_text(path)
    except OSError as error:
        return Unit(name=unit_name, kind=names.unit_type(unit_name), fragment_path=str(path),
                    load_state="not-found", load_error=f"Failed to read {path}: {error.strerror}")
    loader = UnitLoader([path.parent], context)
    return build_unit(unit_name, (str(path), text), loader._dropins(unit_name), context)
