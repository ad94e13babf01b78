"""`python tests/no_landlock.py -m MODULE ARGS...`: run MODULE on a kernel that seems to lack Landlock.

A seccomp filter makes the three Landlock system calls fail with ENOSYS, as on a kernel built without it; the
filter is inherited by every process MODULE starts (sandbox workers and their children). x86_64 only.
"""

from __future__ import annotations

import ctypes
import runpy
import struct
import sys

_LANDLOCK_SYSCALLS = (444, 445, 446)
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ERRNO_ENOSYS = 0x00050000 | 38
_RET_ALLOW = 0x7FFF0000


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def deny_landlock() -> None:
    program = [_instruction(0x20, 0, 0, 0)]  # load the syscall number
    for number in _LANDLOCK_SYSCALLS:
        program.append(_instruction(0x15, 0, 1, number))  # equal? next : skip one
        program.append(_instruction(0x06, 0, 0, _RET_ERRNO_ENOSYS))
    program.append(_instruction(0x06, 0, 0, _RET_ALLOW))
    code = b"".join(program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit(__doc__)
    deny_landlock()
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
