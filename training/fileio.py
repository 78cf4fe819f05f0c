"""Atomic file output: every stage writes through here, so an error or an
interrupt never leaves a half-written artifact behind.

The data goes to a temporary file in the target's folder, is flushed to disk
and moved into place with ``os.replace`` (atomic on POSIX); parent folders
are created; on any error the temporary file is removed and an existing file
at the target is left untouched.

Every command checks its output paths here before it starts any work
(:func:`check_out_file`, :func:`check_out_dir`): a folder where a file goes, a
file where a folder goes, or a folder holding files tinyrrm did not write is
one clear error, and nothing is deleted or replaced that tinyrrm did not create.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


# --------------------------------------------------------------------------
# output paths, checked before any work
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderMark:
    """How a folder that tinyrrm wrote knows itself: a JSON ``manifest`` in it whose
    ``"format"`` is ``format``; ``listed(doc)`` names the other files it may hold
    (posix paths relative to the folder)."""

    manifest: str
    format: str
    listed: Callable[[dict], Iterable[str]]

    def files(self, folder: Path) -> set[str] | None:
        """The files a folder of this kind may hold, or None when ``folder`` is not one."""
        try:
            doc = json.loads((folder / self.manifest).read_text())
            if not isinstance(doc, dict) or doc.get("format") != self.format:
                return None
            return {self.manifest, *self.listed(doc)}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            return None


def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{path}: {parent} is a file, not a folder")
            return


def check_out_file(path) -> Path:
    """Up front, before any work: ``path`` can take a file the command writes whole
    (an existing file there is replaced atomically; a folder there is refused)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name to write")
    _check_parents(path)
    return path


def check_out_dir(path, mark: FolderMark | None = None, writes: Iterable[str] | None = ()) -> Path:
    """Up front, before any work: the command may write folder ``path``.

    ``writes`` None: the command replaces the folder as a whole, so an existing
    folder must be empty or one that tinyrrm wrote (``mark``) with no file beyond
    its list. ``writes`` names: the command writes only these files into the folder
    and leaves the rest alone, so none of them may exist unless the folder carries
    ``mark`` (``()``: a folder of reports whose files the command rewrites by name).
    Always refused: a file at ``path`` or at one of its parents. One-line errors
    (OSError kinds); nothing is touched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{path}: is a file, not a folder; tinyrrm will not replace it (remove it or choose another output folder)"
        )
    _check_parents(path)
    if not path.is_dir():
        return path
    ours = mark.files(path) if mark is not None else None
    if writes is None:
        present = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if not p.is_dir())
        foreign = [f for f in present if ours is None or f not in ours]
    else:
        foreign = [] if ours is not None else sorted(f for f in set(writes) if (path / f).exists())
    if foreign:
        what = "tinyrrm did not write" if ours is None else f"that its {mark.manifest} does not list"
        raise FileExistsError(
            f"{path}: holds {len(foreign)} file(s) {what} (first: {foreign[0]}); "
            "tinyrrm replaces only what it wrote (remove them or choose another output folder)"
        )
    return path


def dir_mode() -> int:
    """The mode a new folder gets from ``mkdir``: ``0o777 & ~umask``."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask
