"""One day's response body streamed gzip-compressed to a hidden temp file in the destination folder (renamed into
place by the caller once complete): a crash or a failed download never leaves a partial file under the final
name (nor, except after a hard kill, a temp file)."""

from __future__ import annotations

import gzip
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

CHUNK_BYTES = 1 << 20  # read/write 1 MiB at a time: memory stays flat whatever the day's size
GZIP_LEVEL = 6
TERMINATED_EARLY_MARKER = b"terminated early"
_TAIL_BYTES = 4096  # how much of the end of the body is kept to find the last line


@dataclass
class WrittenBody:
    tmp_path: Path
    bytes_written: int
    lines: int
    terminated_early: bool
    body_bytes: int


def stream_to_temp(resp: requests.Response, dest_dir: Path, final_name: str) -> WrittenBody:
    """Write the (decoded) body gzip-compressed to a hidden temp file in ``dest_dir``. On any error the temp
    file is removed and the error propagates."""
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{final_name}.", suffix=".part")
    tmp_path = Path(tmp_name)
    lines = 0
    body_bytes = 0
    tail = b""
    try:
        with os.fdopen(fd, "wb") as raw_f:
            # filename="" and mtime=0: no temp name in the gzip header, same bytes for the same body
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw_f, compresslevel=GZIP_LEVEL, mtime=0) as gz:
                # iter_content undoes the wire's Content-Encoding (gzip) chunk by chunk
                for chunk in resp.iter_content(chunk_size=CHUNK_BYTES):
                    if not chunk:
                        continue
                    gz.write(chunk)
                    body_bytes += len(chunk)
                    lines += chunk.count(b"\n")
                    tail = (tail + chunk[-_TAIL_BYTES:])[-_TAIL_BYTES:]
            raw_f.flush()
            os.fsync(raw_f.fileno())
        if tail and not tail.endswith(b"\n"):
            lines += 1
        last_line = tail.rstrip().rsplit(b"\n", 1)[-1].strip()
        return WrittenBody(
            tmp_path=tmp_path,
            bytes_written=tmp_path.stat().st_size,
            lines=lines,
            terminated_early=last_line.lower() == TERMINATED_EARLY_MARKER,
            body_bytes=body_bytes,
        )
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """Make the rename durable (best effort; not possible on every platform)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
