"""One way to write a file that readers may look at any moment: whole or not at all."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, mode: int = 0o644, text: bool = False) -> Iterator[IO[Any]]:
    """Yield a file beside `path`; on a clean exit it is synced and moved into place in one step.

    A reader (systemd on reload, a service user loading a model) never sees a half-written file,
    and a crash or an exception inside the block leaves the old file as it was. The temporary file
    is private (0600) from its first byte, so a secret written through it is never readable by
    others; `mode` is applied before the move.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
