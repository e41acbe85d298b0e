"""Boot a small KVM virtual machine with a full cgroup v2 hierarchy and run pytest inside it.

Hosts whose controllers are bound to cgroup v1 (a hybrid layout) or that
delegate none of them cannot test the kernel-enforced limits. The VM fixes
that without touching the host:

- kernel: Debian's linux-image-amd64, unpacked by `fetch-kernel` into the
  cache (`$UNITMGR_VM_CACHE`, default `${XDG_CACHE_HOME:-~/.cache}/unitmgr-vm`);
- initramfs: built here from busybox-static, `init.sh` and the kernel
  modules that virtio 9p needs, in the load order of `modules.dep`;
- root file system: the host's `/`, read-only over 9p, with tmpfs on /tmp,
  /run and /var/tmp, so the guest runs the same Python and the same checkout;
- results: a writable 9p share mounted at /tmp/vm-results in the guest,
  which contains run.sh (written by the host) and pytest's output, exit code
  and JUnit XML;
- no network device (`-nic none`); the guest only brings up loopback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The same default as fetch-kernel's.
CACHE = Path(os.environ.get("UNITMGR_VM_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unitmgr-vm")
QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/bin/busybox")
# The guest needs virtio PCI, 9p over virtio and an entropy source. modules.dep adds netfs, fscache and the rest.
GUEST_MODULES = ("kernel/drivers/virtio/virtio_pci.ko", "kernel/net/9p/9pnet_virtio.ko",
                 "kernel/fs/9p/9p.ko", "kernel/drivers/char/hw_random/virtio-rng.ko")
MEMORY_MIB = 1024
CPUS = 2
# Set in the guest's environment so that tests can tell they run in the VM.
GUEST_ENV_FLAG = "UNITMGR_TEST_VM"
GUEST_RESULTS = "/tmp/vm-results"
INIT_MARKER = b"unitmgr-vm: init started"
# A guest reaches its init within seconds under KVM. On some nested KVM hosts the kernel
# hangs in early boot instead; TCG is used then, and this note skips KVM on the next run.
KVM_BOOT_SECONDS = 20.0
KVM_HANG_NOTE = CACHE / "kvm-hangs"
ACCELERATORS = {
    # Some nested KVM hosts reject the guest's write of IA32_ARCH_CAPABILITIES (MSR 0x10a) at start.
    "kvm": ["-enable-kvm", "-cpu", "host,-arch-capabilities"],
    "tcg": ["-accel", "tcg,thread=multi", "-cpu", "max"],
}


@dataclass
class Kernel:
    image: Path
    modules: Path

    @property
    def release(self) -> str:
        return self.modules.name


@dataclass
class GuestRun:
    """What a run in the VM left behind; `returncode` is None when pytest never finished."""

    returncode: int | None
    console: str
    output: str
    results: Path
    seconds: float
    accel: str

    @property
    def junit(self) -> Path:
        return self.results / "junit.xml"


def find_kernel(cache: Path = CACHE) -> Kernel | None:
    """Return the newest complete kernel that `fetch-kernel` unpacked into `cache`."""
    for package in sorted(cache.glob("linux-image-*"), reverse=True):
        if not (package / ".complete").exists():
            continue
        images = sorted(package.glob("boot/vmlinuz-*"))
        if not images:
            continue
        release = images[-1].name.removeprefix("vmlinuz-")
        modules = package / "lib" / "modules" / release
        if (modules / "modules.dep").exists():
            return Kernel(images[-1], modules)
    return None


def missing_requirement() -> str | None:
    """Return why the VM cannot boot on this host, or None when it can."""
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm is missing (no hardware virtualization)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user"
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian package qemu-system-x86)"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} is missing (Debian package busybox-static)"
    if find_kernel() is None:
        return f"no kernel in {CACHE}; run tests/vm/fetch-kernel (as scripts/test does)"
    return None


def module_load_order(kernel: Kernel, wanted: tuple[str, ...] = GUEST_MODULES) -> list[str]:
    """Return the paths (relative to the modules directory) to insmod, each dependency before its users.

    Each modules.dep line is `module: dep1 dep2 ...` with the full dependency
    list, ordered so that the last one must be loaded first.
    """
    depends: dict[str, list[str]] = {}
    for line in (kernel.modules / "modules.dep").read_text().splitlines():
        module, _, rest = line.partition(":")
        depends[module] = rest.split()
    order: list[str] = []
    for module in wanted:
        if module not in depends:
            raise FileNotFoundError(f"kernel module {module} is not in {kernel.modules / 'modules.dep'}")
        for item in [*reversed(depends[module]), module]:
            if item not in order:
                order.append(item)
    return order


def build_initramfs(kernel: Kernel, directory: Path) -> Path:
    """Write an uncompressed newc initramfs with busybox, init.sh and the 9p modules, and return its path."""
    staging = directory / "initramfs"
    (staging / "bin").mkdir(parents=True)
    (staging / "modules").mkdir()
    shutil.copy2(BUSYBOX, staging / "bin" / "busybox")
    shutil.copy2(HERE / "init.sh", staging / "init")
    (staging / "init").chmod(0o755)
    names = []
    for module in module_load_order(kernel):
        name = Path(module).name
        shutil.copy2(kernel.modules / module, staging / "modules" / name)
        names.append(name)
    (staging / "modules" / "order").write_text("\n".join(names) + "\n")

    entries = sorted(str(path.relative_to(staging)) for path in staging.rglob("*"))
    archive = directory / "initramfs.cpio"
    with open(archive, "wb") as out:
        subprocess.run([str(BUSYBOX), "cpio", "-o", "-H", "newc"], cwd=staging, input="\n".join(entries).encode(),
                       stdout=out, stderr=subprocess.PIPE, check=True)
    return archive


def qemu_command(kernel: Kernel, initramfs: Path, results: Path, accel: str) -> list[str]:
    share = "security_model=none,multidevs=remap"
    return [
        QEMU, *ACCELERATORS[accel], "-m", str(MEMORY_MIB), "-smp", str(CPUS),
        "-nographic", "-monitor", "none", "-nic", "none", "-no-reboot",
        "-kernel", str(kernel.image), "-initrd", str(initramfs),
        # panic=-1 reboots at once on a panic, which -no-reboot turns into qemu exiting.
        # unitmgr_repo names the checkout, which init.sh mounts again when a tmpfs covers it (a clone in /tmp).
        "-append", f"console=ttyS0 panic=-1 quiet unitmgr_repo={REPO}",
        "-virtfs", f"local,path=/,mount_tag=hostroot,readonly=on,{share}",
        "-virtfs", f"local,path={REPO},mount_tag=repo,readonly=on,{share}",
        "-virtfs", f"local,path={results},mount_tag=results,{share}",
        "-device", "virtio-rng-pci",
    ]


def guest_script(pytest_args: list[str]) -> str:
    """Return run.sh: pytest on the host's checkout and Python, with output in the results share."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp/home", "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", GUEST_ENV_FLAG: "1",
        # For `-p guest_plugin` and the `support` module it patches.
        "PYTHONPATH": f"{HERE}:{REPO / 'tests'}",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "guest_plugin", "-q", "-rA",
               f"--junitxml={GUEST_RESULTS}/junit.xml", *pytest_args]
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    return "\n".join([
        "mkdir -p /tmp/home",
        f"cd {shlex.quote(str(REPO))} || exit 1",
        f"env -i {exports} {shlex.join(command)} > {GUEST_RESULTS}/pytest.log 2>&1",
        f"echo $? > {GUEST_RESULTS}/pytest.rc",
        "",
    ])


def run_pytest_in_vm(pytest_args: list[str], directory: Path, timeout: float = 400.0,
                     accel: str = "auto") -> GuestRun:
    """Boot the VM, run pytest with `pytest_args` in the repository, and return what it left.

    `accel` is "kvm", "tcg" or "auto": KVM, or QEMU's emulator (TCG) when the
    guest does not reach its init under KVM within KVM_BOOT_SECONDS.
    """
    kernel = find_kernel()
    if kernel is None:
        raise FileNotFoundError(f"no kernel in {CACHE}; run tests/vm/fetch-kernel")
    initramfs = build_initramfs(kernel, directory)
    if accel == "auto":
        known_hang = KVM_HANG_NOTE.exists() and KVM_HANG_NOTE.read_text() == kvm_hang_key()
        if not known_hang:
            run = boot(kernel, initramfs, pytest_args, directory / "kvm", timeout, "kvm", KVM_BOOT_SECONDS)
            if run is not None:
                return run
            KVM_HANG_NOTE.write_text(kvm_hang_key())
        accel = "tcg"
    run = boot(kernel, initramfs, pytest_args, directory / accel, timeout, accel)
    assert run is not None
    return run


def kvm_hang_key() -> str:
    """Identify the host for KVM_HANG_NOTE by its kernel release and QEMU binary."""
    return f"{os.uname().release} {shutil.which(QEMU)}\n"


def boot(kernel: Kernel, initramfs: Path, pytest_args: list[str], directory: Path, timeout: float,
         accel: str, boot_seconds: float | None = None) -> GuestRun | None:
    """Run the VM once; return None when its init did not start within `boot_seconds`.

    qemu is killed by its pid then, when it outlives `timeout` seconds, and
    when anything here fails.
    """
    results = directory / "results"
    results.mkdir(parents=True)
    (results / "run.sh").write_text(guest_script(pytest_args))
    console_path = directory / "console.log"

    started = time.monotonic()
    with open(console_path, "wb") as console:
        qemu = subprocess.Popen(qemu_command(kernel, initramfs, results, accel), stdin=subprocess.DEVNULL,
                                stdout=console, stderr=subprocess.STDOUT)
        try:
            if boot_seconds is not None and not wait_for_init(qemu, console_path, boot_seconds):
                return None
            qemu.wait(max(timeout - (time.monotonic() - started), 1.0))
        except subprocess.TimeoutExpired:
            console.write(f"\nharness: qemu (pid {qemu.pid}) timed out after {timeout} s\n".encode())
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
    seconds = time.monotonic() - started

    rc_file = results / "pytest.rc"
    rc_text = rc_file.read_text().strip() if rc_file.exists() else ""
    output_file = results / "pytest.log"
    return GuestRun(
        returncode=int(rc_text) if rc_text.isdigit() else None,
        console=console_path.read_text(errors="replace"),
        output=output_file.read_text(errors="replace") if output_file.exists() else "",
        results=results,
        seconds=seconds,
        accel=accel,
    )


def wait_for_init(qemu: subprocess.Popen, console_path: Path, seconds: float) -> bool:
    """Return True once init.sh has printed INIT_MARKER or qemu has exited, False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if qemu.poll() is not None or INIT_MARKER in console_path.read_bytes():
            return True
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    # Manual use: python tests/vm/harness.py DIR [pytest arguments...]
    run = run_pytest_in_vm(sys.argv[2:], Path(sys.argv[1]), accel=os.environ.get("ACCEL", "auto"))
    print(run.console)
    print(run.output)
    print(f"pytest exit code {run.returncode}, {run.seconds:.1f} s with {run.accel}")
