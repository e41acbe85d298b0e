"""Which keys an SSH connection offers, and in what order.

The order is: each IdentityFile of the config (or, without one, the default
files ~/.ssh/id_rsa, id_ecdsa and id_ed25519), through the SSH agent when the
agent contains that key, else loaded from disk; then, unless IdentitiesOnly is
set, the agent's other keys. A configured key therefore comes before the
agent's others, which keeps a server with a low MaxAuthTries from closing
the connection first. An IdentityFile may be a public key alone (`key.pub`,
or `key` missing next to `key.pub`) whose private half is in the agent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import paramiko
from paramiko.auth_strategy import AuthSource, AuthStrategy, InMemoryPrivateKey, OnDiskPrivateKey
from unitmgr.shell.sshconfig import HostSettings

log = logging.getLogger(__name__)

DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519")


class KeyList(AuthStrategy):
    """An auth strategy that offers a fixed list of keys in order, and fails like paramiko when the list is empty."""

    def __init__(self, sources: list[AuthSource]):
        super().__init__(ssh_config=None)
        self.sources = sources

    def get_sources(self):  # noqa: ANN201 - paramiko's signature
        yield from self.sources

    def authenticate(self, transport: paramiko.Transport):  # noqa: ANN201 - paramiko's signature
        if not self.sources:
            # The same message as SSHClient.connect, which ssh._connect_error turns into advice.
            raise paramiko.SSHException("No authentication methods available")
        return super().authenticate(transport)


def open_agent() -> paramiko.Agent | None:
    """Connect to the agent of SSH_AUTH_SOCK; None when there is none or it does not respond."""
    try:
        return paramiko.Agent()
    except paramiko.SSHException as exc:
        log.info("cannot use the SSH agent: %s", exc)
        return None


def key_sources(settings: HostSettings, agent_keys: tuple[paramiko.AgentKey, ...]) -> list[AuthSource]:
    """Return the keys to offer for `settings`, in order."""
    configured = bool(settings.identity_files)
    paths = settings.identity_files if configured else DEFAULT_IDENTITIES
    by_blob = {key.asbytes(): key for key in agent_keys}
    sources: list[AuthSource] = []
    offered: set[bytes] = set()
    for name in paths:
        path = Path(name).expanduser()
        private = _load_private(path) if not path.name.endswith(".pub") else None
        blob = _public_blob(path) or (private.asbytes() if private is not None else None)
        if blob is None or blob in offered:
            continue
        offered.add(blob)
        if blob in by_blob:
            sources.append(InMemoryPrivateKey(settings.user, by_blob[blob]))
        elif private is not None:
            origin = "ssh-config" if configured else "implicit-home"
            sources.append(OnDiskPrivateKey(settings.user, origin, path, private))
        elif configured:
            log.info("%s: IdentityFile %s has no usable private key and the agent does not contain it",
                     settings.alias, path)
    if not settings.identities_only:
        sources.extend(InMemoryPrivateKey(settings.user, key) for blob, key in by_blob.items()
                       if blob not in offered)
    log.debug("%s: offering %d keys", settings.alias, len(sources))
    return sources


def _load_private(path: Path) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        return None
    except (paramiko.PasswordRequiredException, TypeError):
        # cryptography 48 raises TypeError for an encrypted OpenSSH-format key loaded without a passphrase.
        # TODO: ask for the passphrase in the interactive shell. Until then only the agent can use such a key.
        log.info("%s is encrypted; it is used only through the SSH agent", path)
        return None
    except (OSError, ValueError, paramiko.SSHException) as exc:
        log.info("cannot load the key %s: %s", path, exc)
        return None


def _public_blob(path: Path) -> bytes | None:
    public = path if path.name.endswith(".pub") else path.with_name(path.name + ".pub")
    try:
        return paramiko.PublicBlob.from_file(str(public)).key_blob
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("cannot read the public key %s: %s", public, exc)
        return None
