"""Process-level isolation primitives: secret-name patterns, rlimits, privilege drop, namespaces, prctl.

Each function does one thing so the worker can apply them in a clear order right after fork, and tests can
exercise each layer on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import os
import pwd
import resource
import shutil
import signal
import struct
import sys
import time

import psutil

# Names that look like secrets (API keys, tokens, cloud credentials): a second net behind the environment
# allow-list of environment.py, which is what decides what a sandbox inherits.
SECRET_PATTERNS = (
    "*_API_KEY",
    "*_APIKEY",
    "*API_KEY*",
    "*_TOKEN",
    "*_TOKEN_*",
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "*_KEY_ID",
    "*PRIVATE_KEY*",
    "*ACCESS_KEY*",
    "*SESSION*",
    "*AUTH*",
    "*COOKIE*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_*",
    "GCLOUD_*",
    "GCP_*",
    "HF_*",
    "HUGGING_FACE_*",
    "OPENAI_*",
    "GEMINI_*",
    "ANTHROPIC_*",
    "WANDB_*",
    "GITHUB_*",
    "GH_*",
    "SSH_*",
    "GPG_*",
    "NETRC",
    "PGPASS*",
    "DATABASE_URL",
    "*_DSN",
)

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
NOBODY = "nobody"


def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_PATTERNS)


def set_memory_limit(limit_mb: int) -> int:
    """Cap the address space at the current size plus `limit_mb` (a forked worker already maps torch)."""
    with open("/proc/self/status") as fh:
        vm_kb = next((int(line.split()[1]) for line in fh if line.startswith("VmSize:")), 0)
    limit = vm_kb * 1024 + limit_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


def set_process_limits(
    cpu_seconds: int | None, file_size_mb: int = 512, max_processes: int | None = None
) -> None:
    """No core dumps, bounded file sizes; optionally bounded CPU time and process count (per uid)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    if cpu_seconds is not None and (cpu_hard == resource.RLIM_INFINITY or cpu_hard > cpu_seconds + 5):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    fsize = file_size_mb * 1024 * 1024
    _, fsize_hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if fsize_hard == resource.RLIM_INFINITY or fsize_hard > fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if max_processes is not None:
        _, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if nproc_hard == resource.RLIM_INFINITY or nproc_hard > max_processes:
            resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))


def task_count(uid: int) -> int:
    """How many tasks (threads) `uid` runs now: RLIMIT_NPROC counts threads, machine-wide, per uid."""
    count = 0
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{entry.name}/status") as fh,
            ):
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    count += int(fields.get("Threads", "1"))
    return count


def unprivileged_ids(
    readable: list[str] | None = None, devices: list[str] | None = None
) -> tuple[int, int] | None:
    """(uid, gid) of `nobody` when running as root, `nobody` can read every path in `readable` and open
    every device node in `devices` read-write (a GPU worker's /dev/nvidia*).

    A root-owned interpreter under a private home (pyenv in /root) is unreadable to `nobody`; the sandbox then
    stays uid 0 but drops every capability instead (see `drop_capabilities`). None also when not root.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(NOBODY)
    except KeyError:
        return None
    ids = (entry.pw_uid, entry.pw_gid)
    pid = os.fork()
    if pid == 0:  # probe in a throw-away child: the uid change is irreversible
        code = 1
        try:
            drop_privileges(ids)
            for path in readable or []:
                if os.path.isdir(path):  # the directory and a few of its files (mkstemp makes 0600 ones)
                    for name in sorted(os.listdir(path))[:3]:
                        if os.path.isfile(os.path.join(path, name)):
                            with open(os.path.join(path, name), "rb") as fh:
                                fh.read(1)
                else:
                    with open(path, "rb") as fh:
                        fh.read(1)
            if not all(os.access(d, os.R_OK | os.W_OK) for d in devices or [] if not os.path.isdir(d)):
                raise PermissionError("GPU device nodes not usable")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return ids if os.waitstatus_to_exitcode(status) == 0 else None


def drop_privileges(ids: tuple[int, int]) -> None:
    """Become `ids` for good (supplementary groups cleared first, uid last)."""
    uid, gid = ids
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise OSError("privilege drop did not take effect")


def drop_capabilities() -> None:
    """Drop every capability (bounding, ambient, effective, permitted, inheritable) while keeping the uid.

    Root without capabilities cannot override file permissions, kill other users' processes, mount, load
    modules, raise rlimits or use raw sockets; Landlock covers what uid 0 still owns (its own files and
    processes). Exec cannot regain capabilities once the bounding set is empty.
    """
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and os.geteuid() == 0:
            err = ctypes.get_errno()
            raise OSError(err, f"PR_CAPBSET_DROP({cap}): {os.strerror(err)}")
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAP_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)
    if _libc.capset(header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")
    with open("/proc/self/status") as fh:
        effective = next(line.split()[1] for line in fh if line.startswith("CapEff:"))
    if int(effective, 16) != 0:
        raise OSError("capabilities still effective after drop")


def new_network_namespace() -> bool:
    """Move into an empty network namespace (no interfaces but a down loopback); False when not permitted."""
    return _libc.unshare(_CLONE_NEWNET) == 0


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to kill this process when its parent dies (must be set after any uid change)."""
    _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    # The parent may already be gone between fork and this call.
    if os.getppid() == 1:
        os.kill(os.getpid(), sig)


def become_subreaper() -> bool:
    """Adopt orphaned descendants, so daemonized grandchildren of a program can still be found and killed."""
    return _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


# Only what the interpreter, torch and g++ need from /etc and /dev: uid 0 without capabilities still owns
# root-only files (/etc/shadow) and block devices, so whole-tree read rules there would leak them.
_ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime", "timezone",
    "alternatives", "os-release", "host.conf", "hosts", "gai.conf", "mime.types", "gcc", "debian_version",
)  # fmt: skip
_DEV_FILES = ("null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr")


def gpu_device_files() -> list[str]:
    """GPU device nodes a CUDA/ROCm program opens read-write and ioctls."""
    names = [n for n in os.listdir("/dev") if n.startswith(("nvidia", "kfd"))]
    return [os.path.join("/dev", n) for n in sorted(names)]


def compiler_roots() -> list[str]:
    """Install prefixes of the C/C++ compilers Inductor may call (they need not live in /usr: /opt/gcc, conda)."""
    roots = []
    for name in (os.environ.get("CXX"), os.environ.get("CC"), "g++", "c++", "gcc", "cc", "clang++"):
        path = name and shutil.which(name)
        if path:
            for candidate in (path, os.path.realpath(path)):
                roots.append(os.path.dirname(os.path.dirname(candidate)))  # <prefix>/bin/g++ -> <prefix>
    return [r for r in roots if r not in ("/", "")]


def read_roots(extra: list[str] | None = None) -> list[str]:
    """Paths a sandboxed program (and g++) may read: system dirs, compilers, the interpreter, its packages."""
    roots = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/proc", "/sys"]
    roots += [os.path.join("/etc", name) for name in _ETC_FILES]
    roots += [os.path.join("/dev", name) for name in _DEV_FILES]
    roots += compiler_roots()
    for prefix in {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
    }:
        roots.append(prefix)
        roots.append(os.path.realpath(prefix))
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for entry in sys.path:
        packages = "site-packages" in entry or "dist-packages" in entry or entry in python_path
        if entry and packages and os.path.isdir(entry):
            roots.append(entry)
    roots.extend(extra or [])
    return sorted(set(roots))


def kill_descendants(grace_s: float = 2.0) -> int:
    """SIGKILL every process below this one (orphans included: we are their subreaper) and reap them."""
    me = psutil.Process()
    killed = 0
    deadline = time.monotonic() + grace_s
    while True:
        try:
            procs = me.children(recursive=True)
        except psutil.Error:
            procs = []
        for proc in procs:
            with contextlib.suppress(psutil.Error, OSError):
                proc.kill()
                killed += 1
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        if not procs or time.monotonic() > deadline:
            return killed
        time.sleep(0.01)
