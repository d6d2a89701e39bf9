"""The sandbox: ordinary code runs, hostile code is contained, and nothing outlives the call."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from recursa.traces.sandbox import extract_python, python_blocks, run_python

# Hostile tests use small limits and short timeouts: the machine is shared.
LIMITS = dict(timeout_s=2, memory_mb=256, max_processes=8)


def processes_in(directory: str) -> list[int]:
    """Processes whose working directory is `directory` (or what is left of it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(directory):
                    found.append(int(entry))
            except OSError:  # gone, or not ours to read
                pass
    return found


def test_passing_code_reports_its_output():
    result = run_python("print(sum(range(10)))")
    assert result.passed and result.returncode == 0 and not result.timed_out
    assert result.stdout == "45\n"


def test_failing_code_reports_why():
    result = run_python("def add(a, b):\n    return a - b\n\nassert add(2, 2) == 4, 'add is wrong'\n")
    assert not result.passed and result.returncode == 1
    assert "AssertionError: add is wrong" in result.reason
    assert "add is wrong" in result.stderr


def test_code_can_read_and_write_its_own_directory():
    result = run_python("from pathlib import Path\nPath('notes.txt').write_text('kept')\n"
                        "print(Path('notes.txt').read_text(), 'main.py' in [p.name for p in Path('.').iterdir()])")
    assert result.passed, result.stderr
    assert result.stdout == "kept True\n"


def test_infinite_loop_times_out_and_is_killed():
    started = time.monotonic()
    result = run_python("import os\nprint(os.getcwd(), flush=True)\nwhile True:\n    pass\n", **LIMITS)
    assert result.timed_out and not result.passed
    assert "timed out" in result.reason
    assert time.monotonic() - started < 10
    assert processes_in(result.stdout.split()[0]) == []


def test_fork_bomb_is_contained_and_leaves_no_process():
    bomb = ("import os, time\nprint(os.getcwd(), flush=True)\n"
            "for _ in range(100_000):\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n")
    result = run_python(bomb, **LIMITS)
    assert not result.passed
    assert processes_in(result.stdout.split()[0]) == []


def test_background_child_does_not_outlive_the_call():
    code = ("import os, time\nprint(os.getcwd(), flush=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n")
    started = time.monotonic()
    result = run_python(code, **LIMITS)
    assert result.passed
    assert time.monotonic() - started < 10
    if os.geteuid() == 0:  # unprivileged, a child that called setsid is outside the killed group
        assert processes_in(result.stdout.split()[0]) == []


def test_huge_allocation_fails_inside_the_sandbox():
    result = run_python("block = bytearray(4 * 1024**3)\nprint('allocated')", **LIMITS)
    assert not result.passed
    assert "MemoryError" in result.reason
    assert "allocated" not in result.stdout


def test_file_size_is_limited():
    result = run_python("open('big.bin', 'wb').write(b'x' * 3 * 1024**2)", file_size_mb=1, **LIMITS)
    assert not result.passed
    assert "File too large" in result.stderr


def test_output_is_truncated():
    result = run_python("print('x' * 100_000)", max_output_bytes=1000)
    assert result.passed
    assert len(result.stdout) < 1100 and "more bytes" in result.stdout


@pytest.mark.parametrize("drop_privileges", [True, False], ids=["isolated", "guard-only"])
@pytest.mark.parametrize("where", ["private", "world-writable"])
def test_writes_outside_the_directory_do_not_happen(tmp_path, drop_privileges, where):
    folder = tmp_path if where == "private" else Path("/tmp")
    target = folder / f"recursa-sandbox-escape-{uuid.uuid4().hex}.txt"
    attempts = [
        f"open({str(target)!r}, 'w').write('escaped')",
        f"os.close(os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY))",
        f"os.symlink({str(target)!r}, 'link'); open('link', 'w').write('escaped')",
        f"open('inside.txt', 'w').close(); os.rename('inside.txt', {str(target)!r})",
    ]
    code = "import os\nfailures = 0\n" + "".join(
        f"try:\n    {attempt}\nexcept OSError:\n    failures += 1\n" for attempt in attempts) + "print(failures)\n"
    try:
        result = run_python(code, drop_privileges=drop_privileges, **LIMITS)
        assert result.stdout == f"{len(attempts)}\n", result.stderr
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("drop_privileges", [True, False], ids=["isolated", "guard-only"])
def test_network_connections_do_not_arrive(drop_privileges):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = (f"import socket\nwith socket.create_connection(('127.0.0.1', {port}), timeout=1) as s:\n"
                "    s.sendall(b'hello')\n")
        result = run_python(code, drop_privileges=drop_privileges, **LIMITS)
        server.settimeout(0.3)
        with pytest.raises(TimeoutError):
            server.accept()
    assert not result.passed


def test_starting_other_programs_is_refused():
    result = run_python("import subprocess\nsubprocess.run(['echo', 'hi'])", **LIMITS)
    assert not result.passed and "PermissionError" in result.reason


def test_extract_python_from_fences_and_plain_code():
    text = "Here:\n```python\nx = 1\n```\nand\n```py\nprint(x)\n```\n```bash\nls\n```"
    assert python_blocks(text) == ["x = 1\n", "print(x)\n"]
    assert extract_python(text) == "x = 1\n\n\nprint(x)\n"
    assert extract_python("def f():\n    return 1\n") == "def f():\n    return 1\n"


@pytest.mark.parametrize("text", ["", "Hello", "42", "The answer is forty-two."])
def test_extract_python_finds_no_code_in_prose(text):
    assert extract_python(text) is None
