"""A real OpenSSH server and a second manager, playing a remote host for the SSH tests.

Everything here needs root. It creates a dedicated user, named after this
process so that two test runs on one machine do not share it. It starts
/usr/sbin/sshd on 127.0.0.1 for that user only, and a manager as that user.
The manager runs from a virtualenv made with Debian's /usr/bin/python3, because
the user cannot run a Python that lives under /root. The dependencies live in a virtualenv
cached in /var/tmp; each test session adds a copy of this checkout's sources.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from support import REPO, free_port, wait_for

SSHD = Path("/usr/sbin/sshd")
SYSTEM_PYTHON = Path("/usr/bin/python3")
VENV_PREFIX = "unitmgr-remote-venv-"

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {directory}/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers {user}
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
"""


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the SSH tests need root (they create a user and run sshd)"
    if not SSHD.exists():
        return f"{SSHD} is missing; install openssh-server"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is missing; the remote manager needs a Python outside /root"
    return None


def ed25519_key_pair() -> tuple[bytes, str]:
    """Return (OpenSSH private key file content, public key line)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return private, public


# -- the virtualenv of the remote manager ----------------------------------------------


def dependencies_hash() -> tuple[str, list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = sorted(project["dependencies"])
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16], requirements


def base_venv() -> Path:
    """Return a virtualenv with unitmgr's dependencies (not unitmgr), readable by every user.

    It is cached in /var/tmp by a hash of the dependency list, because installing
    them takes several seconds."""
    cache = Path("/var/tmp")
    key, requirements = dependencies_hash()
    venv = cache / f"{VENV_PREFIX}{key}"
    done = venv / ".complete"
    # A lock, because two test runs may build the same virtualenv at once.
    with open(cache / f"{VENV_PREFIX}lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        # The scripts in bin/ name the interpreter by absolute path, so build in place.
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                              *requirements], cwd=venv, capture_output=True, text=True)
        assert pip.returncode == 0, f"pip install {requirements} failed:\n{pip.stdout}{pip.stderr}"
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        done.touch()
        # Builds for other dependency lists go once no test run can still be using them.
        for old in cache.glob(f"{VENV_PREFIX}*"):
            if old.is_dir() and old != venv and time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
    return venv


def install_checkout(directory: Path) -> Path:
    """Make a virtualenv in `directory` running this checkout's sources on the base
    virtualenv's packages; return it. Copying the sources takes a fraction of a
    second where `pip install` of the checkout takes several."""
    base = base_venv()
    venv = directory / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    # Lay the folders out as packages, the way pyproject.toml maps them (unitmgr.units = units/ ...).
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dirs.items():
        target = directory / "src" / Path(*package.split("."))
        shutil.copytree(REPO / folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    [site] = venv.glob("lib/python3*/site-packages")
    [base_site] = base.glob("lib/python3*/site-packages")
    (site / "unitmgr-checkout.pth").write_text(f"{base_site}\n{directory / 'src'}\n")
    for name, module in (("unitmgr", "unitmgr.manager.cli"), ("unitsh", "unitmgr.shell.cli")):
        script = venv / "bin" / name
        script.write_text(f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(directory)], check=True)
    return venv


# -- the test user ---------------------------------------------------------------------


@dataclass
class TestUser:
    name: str
    uid: int
    gid: int
    home: Path

    @classmethod
    def create(cls, name: str) -> TestUser:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            pass
        else:  # left by a crashed run whose pid this process now has
            cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=Path(entry.pw_dir)).remove()
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        # sshd with UsePAM no rejects a locked account ('!' in /etc/shadow); '*' only
        # forbids passwords.
        subprocess.run(["usermod", "-p", "*", name], check=True)
        entry = pwd.getpwnam(name)
        return cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=Path(entry.pw_dir))

    def env(self, venv: Path) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                "PATH": f"{venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

    def run(self, args: list[str], venv: Path, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(args, user=self.uid, group=self.gid, extra_groups=[], env=self.env(venv),
                              cwd=self.home, capture_output=True, text=True, timeout=30, **kwargs)

    def write(self, relative: str, text: str, mode: int = 0o644) -> Path:
        """Write a file in the home directory, owned by the user, creating private parents."""
        path = self.home / relative
        for parent in reversed(path.relative_to(self.home).parents):
            directory = self.home / parent
            if not directory.exists():
                directory.mkdir(mode=0o700)
                os.chown(directory, self.uid, self.gid)
        path.write_text(text)
        path.chmod(mode)
        os.chown(path, self.uid, self.gid)
        return path

    def pids(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def remove(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not self.pids(), timeout=10, message=f"the processes of {self.name} to end")
        subprocess.run(["userdel", "-r", self.name], capture_output=True)
        shutil.rmtree(f"/tmp/unitmgr-{self.uid}", ignore_errors=True)


# -- sshd ------------------------------------------------------------------------------


class SSHServer:
    """/usr/sbin/sshd on 127.0.0.1 with its own host key, allowing one user."""

    def __init__(self, directory: Path, user: str, extra_config: str = ""):
        """`extra_config` is appended to the sshd_config lines, e.g. "MaxAuthTries 2\n"."""
        self.directory = directory
        self.port = free_port()
        self.host_key = directory / "ssh_host_ed25519_key"
        private, public = ed25519_key_pair()
        self.host_key.write_bytes(private)
        self.host_key.chmod(0o600)  # sshd ignores a host key that others can read
        Path(f"{self.host_key}.pub").write_text(public + "\n")
        self.config = directory / "sshd_config"
        self.config.write_text(SSHD_CONFIG.format(port=self.port, host_key=self.host_key,
                                                  directory=directory, user=user) + extra_config)
        self.log_path = directory / "sshd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host_public_key(self) -> str:
        """The host key as `ssh-ed25519 AAAA...` (without the comment)."""
        return " ".join(Path(f"{self.host_key}.pub").read_text().split()[:2])

    def start(self) -> SSHServer:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._accepting, timeout=10, message="sshd to accept connections")
        return self

    def _accepting(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"sshd exited with {self.proc.returncode}:\n{self.log()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the remote manager ----------------------------------------------------------------


class RemoteManager:
    """`unitmgr --user` run as the test user on its default paths under that user's home."""

    def __init__(self, user: TestUser, venv: Path):
        self.user = user
        self.venv = venv
        self.proc: subprocess.Popen | None = None
        self.log_path = user.home / "manager.log"

    @property
    def command(self) -> str:
        return str(self.venv / "bin" / "unitmgr")

    @property
    def keys(self) -> Path:
        return self.user.home / ".config" / "unitmgr" / "keys"

    def start(self, *extra_args: str) -> RemoteManager:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.command, "--user", "--log-level", "debug", *extra_args],
            user=self.user.uid, group=self.user.gid, extra_groups=[], env=self.user.env(self.venv),
            cwd=self.user.home, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        endpoint = Path(f"/tmp/unitmgr-{self.user.uid}/endpoint.json")

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the remote manager exited with {self.proc.returncode}:\n{self.log()}")
            return endpoint.exists()

        wait_for(ready, timeout=20, message="the remote manager's endpoint file")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def authorize(self, public_key: str) -> None:
        result = self.user.run([self.command, "authorize-key", "--label", "test", "-"], self.venv,
                               input=public_key)
        assert result.returncode == 0, result.stderr

    def authorized_keys(self) -> str:
        return (self.keys / "authorized_keys").read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for_process(user: TestUser, needle: str, timeout: float = 10.0) -> int:
    """Return the pid of the user's process whose command line contains `needle`."""

    def find() -> int | None:
        for pid in user.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                return pid
        return None

    return wait_for(find, timeout=timeout, message=f"a process running {needle!r}")  # type: ignore[return-value]
