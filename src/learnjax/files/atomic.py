"""Writing a file whole or not at all, readable as a plain `open(path, "w")` would make it.

Every file learnjax writes (models, tokenizers, cache entries and records,
`classify --output`) goes through `replacing`. No JAX here: the `learnjax`
command's cache commands and the site's hooks import it cheaply.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    """The process's umask, read without changing it where the system says it
    (Linux), else set and restored at once."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """A file to write that replaces `path` only when the block ends without an
    error: until then `path` keeps what it held, and on an error (Ctrl-C
    included) the partial file is deleted.

    The file is new, of an unpredictable name (O_EXCL), beside `path`: a link
    planted at a predictable name would have the write land elsewhere. It is
    made readable as `open(path, "w")` would make it (0666 less the umask), not
    only by its owner as `mkstemp` makes it, so that a model saved to a shared
    folder can be read by the others who share it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, mode, **open_args) as f:
            if hasattr(os, "fchmod"):  # not on Windows, whose files have no such modes
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` whole (`replacing`)."""
    with replacing(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` as UTF-8, whole (`replacing`)."""
    with replacing(path, "w", encoding="utf-8") as f:
        f.write(text)
