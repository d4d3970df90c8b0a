"""Where a subcommand writes: ``-o/--out`` checked before any model runs, then written whole.

A file is written under a temporary name next to it and renamed into place, so a run that is
killed (Ctrl-C, ``kill``, a full disk) never leaves a truncated ``.npz`` or ``.png`` behind,
and two runs writing the same path leave one complete file. Every failure of the file
system is an :class:`~layerscope.errors.OutputError` naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from layerscope.errors import OutputError

__all__ = ["check_target", "write_atomically"]


def check_target(path: Path, flag: str = "--out") -> None:
    """Refuse a ``path`` that cannot become a file: an existing folder, or one under a file.

    Parameters
    ----------
    path : pathlib.Path
        The file a subcommand will write.
    flag : str
        The option that gave it, for the message (``--out``, ``--json``).

    Raises
    ------
    OutputError
        ``path`` is a folder, or one of its parents is an existing file.

    Examples
    --------
    >>> check_target(Path("feats.npz"))
    """
    if path.is_dir():
        raise OutputError(
            f"Cannot write {flag} {str(path)!r}: it is a folder. Expected a file path, e.g. "
            f"{flag} {path / ('out' + (path.suffix or '.npz'))}."
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"Cannot write {flag} {str(path)!r}: {str(parent)!r} is a file, not a folder. "
                    f"Expected a path under a folder. Pass another {flag}."
                )
            return


def write_atomically(path: Path, write: Callable[[IO[bytes]], None], flag: str = "--out") -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it to ``path``.

    Parameters
    ----------
    path : pathlib.Path
        The final file; its folder is created when missing. A symbolic link is kept: the file
        it points to is replaced.
    write : callable
        Writes the whole content to the binary handle it receives.
    flag : str
        The option that gave ``path``, for the message.

    Raises
    ------
    OutputError
        The folder cannot be created, or the file cannot be written (permissions, disk full).
        Nothing is left at ``path`` (nor a temporary file) after a failure or an interrupt.

    Examples
    --------
    >>> write_atomically(Path("report.bin"), lambda fh: fh.write(b"abc"))
    """
    check_target(path, flag)
    if path.is_symlink():  # write where the link points, as `open(path, "wb")` did; keep the link
        path = Path(os.path.realpath(path))
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
        with open(tmp, "xb") as fh:  # "x": a new file, with the umask's permissions
            write(fh)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(
            f"Cannot write {flag} {str(path)!r}: {exc.strerror or exc}. Expected a writable file "
            f"path (its folder is created when missing). Pass another {flag}, or free space or "
            "permissions there."
        ) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
