"""The child side of the sandbox: standard library only, run as `python -I -c <this source> <settings>`.

`launch` runs first, as the caller's user: it sets the resource limits and, when asked to isolate
(the caller is root), moves into new network and PID namespaces, forks the process that becomes
PID 1 of the new namespace, drops that process to the unprivileged user and execs a fresh
interpreter in `run` mode; the launcher waits and exits as its child did, which is only once every
process in the namespace has ended. On SIGTERM the launcher kills its child, ending the namespace. Without isolation,
`launch` goes straight on to `run` in the same process.

`run` installs the guard (an audit hook refusing network use, process execution, ctypes and writes
outside the working directory) and then runs `main.py` from the working directory as `__main__`.
"""

import ctypes
import json
import os
import resource
import runpy
import signal
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
PR_SET_NO_NEW_PRIVS = 38

LIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "file_size_bytes": resource.RLIMIT_FSIZE,
    "max_processes": resource.RLIMIT_NPROC,
    "max_open_files": resource.RLIMIT_NOFILE,
}
REFUSED_EVENTS = {
    "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile", "pty.spawn",
}
# Audit events that change the file system, and the argument positions that hold a target path.
PATH_EVENTS = {
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.symlink": (1,),
    "os.link": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.mkfifo": (0,), "os.mknod": (0,), "shutil.rmtree": (0,),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def launch(settings):
    for name, limit in settings["limits"].items():
        hard = limit + 1 if name == "cpu_seconds" else limit  # one second between SIGXCPU and SIGKILL
        resource.setrlimit(LIMITS[name], (limit, hard))
    if settings["user"] is None:
        run(settings["workdir"])
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET | CLONE_NEWPID) failed")
    pid = os.fork()
    if pid:  # SIGTERM: end the namespace; waitpid returns once every process in it is gone
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        exit_like(os.waitpid(pid, 0)[1])
    uid, gid = settings["user"]
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid binaries
    python = settings["python"]
    run_settings = {"stage": "run", "workdir": settings["workdir"]}
    os.execv(python, [python, "-I", "-B", "-c", settings["source"], json.dumps(run_settings)])


def exit_like(status):
    """Exit with the same code, or die by the same signal, as the child whose wait status this is."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def run(workdir):
    os.chdir(workdir)
    sys.addaudithook(guard(os.path.realpath(workdir)))
    sys.argv = ["main.py"]
    runpy.run_path("main.py", run_name="__main__")


def guard(root):
    """An audit hook that refuses what the sandbox forbids, raising PermissionError."""

    def inside(path):
        if isinstance(path, int):  # an already open file descriptor
            return True
        resolved = os.path.realpath(os.fsdecode(path))
        return resolved == root or resolved.startswith(root + os.sep) or resolved == os.devnull

    def hook(event, args):
        if event in REFUSED_EVENTS or event.startswith("ctypes."):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & WRITE_FLAGS
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory: {path!r}")
        elif event in PATH_EVENTS:
            for index in PATH_EVENTS[event]:
                if not inside(args[index]):
                    raise PermissionError(f"sandbox: {event} outside the working directory: {args[index]!r}")

    return hook


if __name__ == "__main__":
    SETTINGS = json.loads(sys.argv[1])
    if SETTINGS["stage"] == "launch":
        launch(SETTINGS)
    else:
        run(SETTINGS["workdir"])
