"""Atomic file writes: a reader (a browser, a customer's loader, another process) sees the old file or the new one,
never half of one. No Dagster import.

The content goes to a hidden temporary file in the target's own folder (``.<name>.<random>.tmp``), which is then
renamed over the target with ``os.replace``: a rename within one file system is atomic. On any error the temporary
file is removed and the error propagates; the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then rename it to ``path`` (parent folders are
    created). ``write`` gets the temporary file's path, e.g. ``lambda p: frame.write_parquet(p)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
