"""A node's log file: opened for the child to append to, rotated by size, read back.

The child writes its standard output and error straight to the file (``O_APPEND``), not
through a pipe to the provisioner: a node must outlive the provisioner that started it
(adoption), and a pipe would break under it. Hence two ways to rotate:

- before a process starts, nothing holds the file: ``node.log`` is renamed ``node.log.1``
  (older ones shifted, the oldest dropped) — no line is lost;
- while it runs, the file is copied to ``node.log.1`` and truncated in place
  ("copytruncate", as logrotate does); the child's next append lands at the new end.
  Lines written between the copy and the truncation are lost: a window of one file copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

_TAIL_BYTES = 64 * 1024
"""At most this much of the end of the log is read to find its last lines."""
_LINE_CHARS = 500
"""Longer lines are cut in failure reasons."""


def _backup(log: Path, n: int) -> Path:
    return log.with_name(f"{log.name}.{n}")


def _shift(log: Path, backups: int) -> None:
    """Make room for a new ``.1``: ``.n-1`` → ``.n`` …, ``.1`` → ``.2``; the oldest goes."""
    with contextlib.suppress(FileNotFoundError):
        _backup(log, backups).unlink()
    for i in range(backups - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(_backup(log, i), _backup(log, i + 1))


def size(log: Path) -> int:
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def rotate_closed(log: Path, max_bytes: int, backups: int) -> bool:
    """Before a start: rename a log of ``max_bytes`` or more to ``.1``; whether it did."""
    if size(log) < max_bytes:
        return False
    _shift(log, backups)
    os.replace(log, _backup(log, 1))
    return True


def rotate_open(log: Path, max_bytes: int, backups: int) -> bool:
    """While a process appends to it: copy a log of ``max_bytes`` or more to ``.1`` and
    truncate it; whether it did."""
    if size(log) < max_bytes:
        return False
    _shift(log, backups)
    shutil.copyfile(log, _backup(log, 1))
    with log.open("r+b") as f:
        f.truncate(0)
    return True


def open_for_child(log: Path, banner: str) -> tuple[int, int]:
    """Open ``log`` for a child to append to, after a banner line; (fd, offset where the
    child's output begins). The caller closes the fd once the child holds its copy."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.write(fd, f"--- {stamp} consortia provisioner: {banner}\n".encode())
    return fd, os.lseek(fd, 0, os.SEEK_END)


def tail(log: Path, offset: int, lines: int) -> list[str]:
    """The last ``lines`` lines written to ``log`` since ``offset`` (since the start of the
    file when it has been truncated under that offset)."""
    try:
        with log.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = offset if offset <= end else 0
            f.seek(max(start, end - _TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    kept = [ln[:_LINE_CHARS] for ln in text.splitlines() if ln.strip()][-lines:]
    return kept
