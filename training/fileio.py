"""Atomic file output: every stage writes through here, so an error or an
interrupt never leaves a half-written artifact behind.

The data goes to a temporary file in the target's folder, is flushed to disk
and moved into place with ``os.replace`` (atomic on POSIX); parent folders
are created; on any error the temporary file is removed and an existing file
at the target is left untouched.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

#: the timestamp of every npz member: identical arrays give byte-identical files
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


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


def npz_bytes(arrays) -> bytes:
    """An np.load-compatible .npz of ``arrays`` (``(name, array)`` pairs, in that order), stored
    uncompressed with fixed member timestamps: identical arrays give identical bytes (np.savez
    stamps each member with the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w", compression=zipfile.ZIP_STORED) as zf:
        for key, val in arrays:
            info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fid:
                np.lib.format.write_array(fid, np.ascontiguousarray(val), allow_pickle=False)
    return buf.getvalue()


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
