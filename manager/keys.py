"""CurveZMQ key files of the control endpoint.

All files live in `Paths.keys` ($XDG_CONFIG_HOME/unitmgr/keys, mode 0700):

    server.key        the manager's secret key (mode 0600)
    server.pub        the manager's public key
    client.key        the local client's secret key (mode 0600)
    client.pub        the local client's public key
    authorized_keys   public keys of the clients the manager accepts

A key file contains one key as Z85 text (40 characters for the 32 bytes of a
Curve25519 key) on its own line. Lines starting with `#` and blank lines are
ignored. `authorized_keys` contains one public key per line, optionally followed
by whitespace and a label (kept as a comment):

    # unitmgr authorized client keys
    rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  ann@laptop

Secret key files that group or others can read are rejected, as ssh does.
This module is a leaf: clients import it, so it imports nothing from the
manager except `paths` and `lazylog`.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from pathlib import Path
from typing import NamedTuple

import zmq
from unitmgr.manager.lazylog import LazyLogger
from unitmgr.manager.paths import Paths, ensure_private_dir
from zmq.utils import z85

# `unitsh -c` imports this module, and it logs only on the manager's paths.
log = LazyLogger(__name__)

KEY_LENGTH = 40  # Z85 characters of a 32-byte Curve key
_Z85_RE = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


class KeyFileError(Exception):
    """A key file is missing, corrupt, or readable by other users."""


# NamedTuples rather than dataclasses, because importing dataclasses would
# cost every `unitsh -c` run several milliseconds.
class KeyPair(NamedTuple):
    public: bytes  # Z85, 40 bytes
    secret: bytes  # Z85, 40 bytes


class KeyMaterial(NamedTuple):
    """The manager's key pair and the local client's key pair (all Z85)."""

    server: KeyPair
    client: KeyPair


def key_files(paths: Paths, name: str) -> tuple[Path, Path]:
    """Return (secret file, public file) for the pair `name` ("server" or "client")."""
    return paths.keys / f"{name}.key", paths.keys / f"{name}.pub"


def parse_key(text: str | bytes) -> bytes:
    """Return `text` (surrounding whitespace stripped) as a Z85 key, or raise ValueError."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    key = text.strip()
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a key is {KEY_LENGTH} Z85 characters, got {len(key)}: {key[:50]!r}")
    if not _Z85_RE.fullmatch(key):
        raise ValueError(f"{key!r} contains characters outside the Z85 alphabet")
    try:
        raw = z85.decode(key.encode("ascii"))
    except struct.error:
        raise ValueError(f"{key!r} is not valid Z85 (a group is out of range)") from None
    if len(raw) != 32 or z85.encode(raw) != key.encode("ascii"):
        raise ValueError(f"{key!r} is not valid Z85 (a group is out of range)")
    return key.encode("ascii")


def parse_public_key_text(text: str) -> bytes:
    """Return the single key in `text`, which is a bare key or the content of a .pub
    file (comments and blank lines allowed, an optional label after the key)."""
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(line.split(None, 1)[0])
    if len(keys) != 1:
        raise ValueError(f"expected exactly one public key, found {len(keys)} non-comment lines")
    return parse_key(keys[0])


# -- reading -------------------------------------------------------------------


def _check_secret_mode(path: Path) -> None:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file; remove it and restart the manager")
    if info.st_uid != os.getuid():
        raise KeyFileError(f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()})")
    if info.st_mode & 0o077:
        raise KeyFileError(
            f"secret key file {path} is accessible by group or others "
            f"(mode {info.st_mode & 0o777:o}); run: chmod 600 {path}"
        )


def read_key_file(path: Path, secret: bool = False) -> bytes:
    """Read one Z85 key from `path`; raise KeyFileError naming the file and the problem."""
    try:
        if secret:
            _check_secret_mode(path)
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} is missing") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is corrupt: it is not ASCII text") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) != 1:
        raise KeyFileError(
            f"key file {path} is corrupt: expected one key line, found {len(lines)}"
        )
    try:
        return parse_key(lines[0])
    except ValueError as exc:
        raise KeyFileError(f"key file {path} is corrupt: {exc}") from None


def _load_pair(paths: Paths, name: str) -> KeyPair:
    secret_file, public_file = key_files(paths, name)
    secret = read_key_file(secret_file, secret=True)
    public = read_key_file(public_file)
    if zmq.curve_public(secret) != public:
        raise KeyFileError(
            f"{public_file} does not match {secret_file}; remove {public_file} and restart "
            "the manager to write it again"
        )
    return KeyPair(public=public, secret=secret)


def load_client_keys(paths: Paths) -> KeyPair:
    """Load the local client's key pair (created by the manager's first start)."""
    return _load_pair(paths, "client")


def load_server_public(paths: Paths) -> bytes:
    """Load the manager's public key from server.pub."""
    return read_key_file(key_files(paths, "server")[1])


def parse_authorized_keys(text: str, source: str) -> tuple[set[bytes], list[str]]:
    """Parse authorized_keys text; return (keys, problems), each problem as "source:line: ..."."""
    keys: set[bytes] = set()
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.add(parse_key(line.split(None, 1)[0]))
        except ValueError as exc:
            problems.append(f"{source}:{number}: invalid key, line ignored: {exc}")
    return keys, problems


def read_authorized_keys(path: Path) -> set[bytes]:
    """Return the Z85 public keys in `path`; bad lines are logged and skipped, a missing
    or unreadable file gives an empty set (with a warning)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        log.warning("authorized keys file %s is missing; no client is accepted", path)
        return set()
    except OSError as exc:
        log.warning("cannot read authorized keys file %s: %s; no client is accepted",
                    path, exc.strerror)
        return set()
    keys, problems = parse_authorized_keys(text, str(path))
    for problem in problems:
        log.warning("%s", problem)
    return keys


# -- writing -------------------------------------------------------------------


def write_atomic(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` through a temporary file and a rename, with `mode`."""
    # Named as tempfile.mkstemp() would, without importing tempfile (and shutil, bz2, lzma) at start-up.
    tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_pair(paths: Paths, name: str, pair: KeyPair) -> None:
    secret_file, public_file = key_files(paths, name)
    write_atomic(
        secret_file,
        f"# unitmgr {name} secret key (Z85); keep it private\n{pair.secret.decode()}\n",
        0o600,
    )
    # A bare key line, so `unitmgr authorize-key < client.pub` and copy-paste both work.
    write_atomic(public_file, f"{pair.public.decode()}\n", 0o644)


def _ensure_pair(paths: Paths, name: str) -> KeyPair:
    secret_file, public_file = key_files(paths, name)
    if not secret_file.exists():
        public, secret = zmq.curve_keypair()
        pair = KeyPair(public=public, secret=secret)
        _write_pair(paths, name, pair)
        log.info("created %s key pair in %s", name, paths.keys)
        return pair
    secret = read_key_file(secret_file, secret=True)
    if not public_file.exists():
        # The public half can always be derived from the secret one.
        public = zmq.curve_public(secret)
        write_atomic(public_file, f"{public.decode()}\n", 0o644)
    return _load_pair(paths, name)


def authorize_key(paths: Paths, key_z85: str | bytes, label: str = "") -> bool:
    """Add a client public key to authorized_keys; return False if it was already there.

    Raise ValueError for an invalid key."""
    key = parse_key(key_z85)
    path = paths.authorized_keys
    ensure_private_dir(paths.keys)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = "# unitmgr authorized client keys: one Z85 public key per line, then a label\n"
    present, _problems = parse_authorized_keys(text, str(path))
    if key in present:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    label = " ".join(label.split())  # one line, so the label cannot start a new key line
    text += f"{key.decode()}  {label}\n" if label else f"{key.decode()}\n"
    write_atomic(path, text, 0o600)
    log.info("authorized client key %s… (%s)", key[:8].decode(), label or "no label")
    return True


def ensure_keys(paths: Paths) -> KeyMaterial:
    """Load the server and local client key pairs, creating them on first start, and
    make sure the local client key is authorised."""
    ensure_private_dir(paths.keys)
    if stat.S_IMODE(paths.keys.stat().st_mode) != 0o700:
        log.info("setting mode 700 on the keys directory %s", paths.keys)
        paths.keys.chmod(0o700)
    server = _ensure_pair(paths, "server")
    client_secret_file = key_files(paths, "client")[0]
    first_client = not client_secret_file.exists()
    client = _ensure_pair(paths, "client")
    if first_client or not paths.authorized_keys.exists():
        authorize_key(paths, client.public, "local client")
    return KeyMaterial(server=server, client=client)
