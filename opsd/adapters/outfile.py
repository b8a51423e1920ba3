"""The ``--into-file`` dump written in one step: created new (O_CREAT | O_EXCL: a file, or a symbolic link even
dangling, already at the path is an error, never followed or replaced), mode 0600 from the start, written through
that descriptor. A failure removes the partial file, when it is still the one opsd created."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from opsd.errors import OpsdError

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MODE = 0o600


def write_new(path: Path, header: str, body: Path, footer: str) -> int:
    """``header``, the contents of ``body`` and ``footer`` into the new file ``path``; the bytes written."""
    try:
        fd = os.open(path, FLAGS, MODE)
    except FileExistsError:
        raise OpsdError(f"{path} exists (a file or a symbolic link appeared there since the plan): opsd never "
                        "overwrites a file; nothing was written") from None
    except OSError as e:
        raise OpsdError(f"cannot create {path}: {e.strerror}") from None
    made = os.fstat(fd)
    done = False
    try:
        with os.fdopen(fd, "wb") as out, body.open("rb") as src:
            out.write(header.encode() + b"\n\n")
            shutil.copyfileobj(src, out, 1 << 20)
            out.write(b"\n" + footer.encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        done = True
        return size
    except OSError as e:
        raise OpsdError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                now = os.lstat(path)
                if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):
                    path.unlink()
