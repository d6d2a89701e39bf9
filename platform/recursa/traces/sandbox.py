"""Run untrusted Python in a limited subprocess, and pull Python code out of model output.

`run_python` writes the code to `main.py` in a fresh temporary directory (removed afterwards) and
runs it with `python -I` in a new session. What it guarantees, always:

- resource limits in the child: CPU seconds, address space, size of written files, number of open
  files and of processes (RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC);
- a wall timeout, after which the whole process group is killed; the group is also killed when the
  main process ends, so background children do not outlive the call;
- output is kept to `max_output_bytes` per stream (and the files it goes to to `file_size_mb`);
- an in-child guard (an audit hook installed before the code runs) that refuses sockets' bind,
  connect and send, starting other programs (subprocess, os.system, exec, spawn), ctypes, and
  opening for writing, creating, renaming or deleting anything outside the temporary directory.

When the caller is root (CI, containers) and `drop_privileges` is on, additionally:

- the child runs in a new network namespace (only a loopback device that is down: no network at
  all, whatever the code does) and a new PID namespace whose init it is: when it ends or is killed,
  the kernel kills every process it started, including ones that left the process group;
- it runs as the unprivileged user `nobody` with no supplementary groups and `no_new_privs`, so
  RLIMIT_NPROC applies (root ignores it) and the kernel refuses writes to files it does not own.
  Its interpreter must be one `nobody` can execute: `sys.executable` when it can, otherwise the
  first `python3` on PATH that it can (found once by a probe), with that interpreter's packages.

What it does not guarantee: it is not a security boundary. The guard is a Python audit hook, so code
that reaches raw system calls without an audited function (for example through `_posixsubprocess`,
or `os.open` with a `dir_fd`) can get past it; as `nobody` it can still write to world-writable
directories such as /tmp if it gets past the guard; unprivileged, a process that calls `setsid` can
outlive the call, RLIMIT_NPROC counts all of the user's processes, and the network is only refused
by the guard. Nothing here protects against kernel exploits. Run untrusted code from the internet
in a VM or a container with its own kernel-level isolation.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import math
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_CHILD_SOURCE = Path(__file__).with_name("_sandbox_child.py").read_text()
_SHUTDOWN_S = 5.0  # how long the launcher may take to empty its namespace after a timeout
_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


class SandboxError(RuntimeError):
    """The sandbox could not be set up (not: the code failed)."""


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended. `passed` is True when the code exited with status 0 within its limits."""

    passed: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    reason: str


def run_python(code: str, *, timeout_s: float = 5.0, cpu_seconds: int | None = None, memory_mb: int = 512,
               file_size_mb: int = 16, max_processes: int = 32, max_open_files: int = 64,
               max_output_bytes: int = 64_000, drop_privileges: bool = True) -> SandboxResult:
    """Run `code` as a script in the sandbox described above and report how it ended.

    `cpu_seconds` defaults to the wall timeout rounded up. `drop_privileges` only matters when the
    caller is root: turning it off keeps the child root and outside new namespaces (guard only).
    """
    user = _sandbox_user() if drop_privileges and os.geteuid() == 0 else None
    limits = {
        "cpu_seconds": cpu_seconds or math.ceil(timeout_s),
        "memory_bytes": memory_mb * 1024**2,
        "file_size_bytes": file_size_mb * 1024**2,
        "max_processes": max_processes,
        "max_open_files": max_open_files,
    }
    with tempfile.TemporaryDirectory(prefix="recursa-sandbox-") as workdir, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        Path(workdir, "main.py").write_text(code)
        if user is not None:
            os.chown(workdir, *user)
        settings = {"stage": "launch", "workdir": workdir, "limits": limits, "user": user,
                    "python": _sandbox_python(user) if user is not None else None, "source": _CHILD_SOURCE}
        process = subprocess.Popen([sys.executable, "-I", "-B", "-c", _CHILD_SOURCE, json.dumps(settings)],
                                   cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"}, start_new_session=True)
        exited = _wait_unreaped(process.pid, timeout_s)
        if not exited and user is not None:
            process.terminate()  # the launcher ends the PID namespace and exits once it is empty
            _wait_unreaped(process.pid, _SHUTDOWN_S)
        _kill_group(process.pid)
        process.wait()
        stdout, stderr = _read_bounded(out, max_output_bytes), _read_bounded(err, max_output_bytes)
    returncode = process.returncode
    return SandboxResult(passed=exited and returncode == 0, returncode=returncode, stdout=stdout, stderr=stderr,
                         timed_out=not exited, reason=_reason(returncode, exited, timeout_s, stderr))


def python_blocks(text: str) -> list[str]:
    """The contents of the ```python (or ```py, or unlabelled) fenced blocks in `text`, in order."""
    return [match.group(2) for match in _FENCE.finditer(text)]


def extract_python(text: str) -> str | None:
    """The Python code in a model's output, or None when there is none.

    Fenced blocks are joined in order. Without fences, the whole text counts as code when it parses
    and is more than bare names or constants (so that "Hello" or "42" is not taken for a program).
    """
    blocks = python_blocks(text)
    if blocks:
        return "\n\n".join(blocks)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    is_code = any(not (isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)))
                  for node in tree.body)
    return text if is_code else None


def _sandbox_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


@functools.cache
def _sandbox_python(user: tuple[int, int]) -> str:
    """The first interpreter (this one, then each python3 on PATH) that `user` can start."""
    on_path = [os.path.join(folder, "python3") for folder in os.get_exec_path()]
    for candidate in dict.fromkeys([sys.executable, *on_path]):
        if not os.path.isfile(candidate):
            continue
        try:
            probe = subprocess.run([candidate, "-I", "-c", "import sys; sys.exit(sys.version_info < (3, 8))"],
                                   user=user[0], group=user[1], extra_groups=[], cwd="/",
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except OSError:  # not executable by that user
            continue
        if probe.returncode == 0:
            return candidate
    raise SandboxError(f"no Python >= 3.8 that uid {user[0]} can execute (tried {sys.executable} and python3 on PATH)")


def _wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Wait for `pid` to exit without reaping it (its process group stays valid); False on timeout."""
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _read_bounded(stream: IO[bytes], limit: int) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    text = stream.read(limit).decode("utf-8", "replace")
    return text + f"\n[... {size - limit} more bytes]" if size > limit else text


def _reason(returncode: int, exited: bool, timeout_s: float, stderr: str) -> str:
    if not exited:
        return f"timed out after {timeout_s:g}s"
    if returncode == 0:
        return "passed"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return "CPU limit (SIGXCPU)" if name == "SIGXCPU" else f"killed by {name}"
    last_line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exit code {returncode}: {last_line}" if last_line else f"exit code {returncode}"
