"""Atomic file output: every stage writes through here, so an error or an
interrupt never leaves a half-written artifact behind.

The data goes to a temporary file in the target's folder, is flushed to disk
and moved into place with ``os.replace`` (atomic on POSIX); parent folders
are created; on any error the temporary file is removed and an existing file
at the target is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a binary file object and move the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def portable(path) -> str:
    """``path`` as generated files and manifests record it: relative to the working directory
    when it lies inside it (an absolute spelling of a repo path gives the same bytes as the
    relative one), with forward slashes; outside it, as given."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
    return p.as_posix()
