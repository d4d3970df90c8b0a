"""One writer per output: an OS file lock on a sidecar, held for the whole run.

The lock is :class:`filelock.FileLock` (``flock`` on POSIX): the kernel releases it when the
holding process ends, however it ends (SIGKILL included), so a crashed run never leaves a
stale lock behind. Beside the lock, ``<lock>.info`` records the holder's PID and host for the
message a second writer gets. The lock is per open file, so a second writer in the same
process (another thread) is refused too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from layerscope.errors import MissingDependencyError, OutputError, OutputLockedError

__all__ = ["OutputLock", "lock_path"]


def lock_path(out: Path, folder: bool) -> Path:
    """``feats.h5`` -> ``feats.h5.lock`` beside it; a shard folder -> ``<folder>/.lock``."""
    return out / ".lock" if folder else out.with_name(out.name + ".lock")


class OutputLock:
    """Context manager: exclusive, non-blocking; :class:`OutputLockedError` when held elsewhere."""

    def __init__(self, path: Path, out: Path) -> None:
        try:
            import filelock
        except ImportError as exc:  # pragma: no cover - filelock is in the dataset extra
            raise MissingDependencyError(
                "Writing a dataset needs filelock: pip install 'layerscope[dataset]'."
            ) from exc
        self.path = path
        self.out = out
        self.info = path.with_name(path.name + ".info")
        self._lock: Any = filelock.FileLock(str(path), timeout=0, thread_local=False)
        self._timeout: type[Exception] = filelock.Timeout

    def __enter__(self) -> OutputLock:
        try:
            self._lock.acquire()
        except self._timeout:
            raise OutputLockedError(
                f"Another process is writing {str(self.out)!r} ({self._holder()}); one output takes "
                "one writer at a time. Wait for it to finish (or stop it), then run again with "
                "resume=True; or write to another path."
            ) from None
        except OSError as exc:
            raise OutputError(
                f"Cannot create the lock file {str(self.path)!r} for {str(self.out)!r}: "
                f"{exc.strerror or exc}. Check that the folder is writable, or choose another `out`."
            ) from exc
        try:
            tmp = self.info.with_name(self.info.name + ".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
            os.replace(tmp, self.info)
        except OSError as exc:
            self._lock.release()
            raise OutputError(
                f"Cannot write {str(self.info)!r}: {exc.strerror or exc}. Check free space and "
                "permissions of the output folder."
            ) from exc
        return self

    def _holder(self) -> str:
        try:
            info = json.loads(self.info.read_text())
            return f"PID {info['pid']} on host {info['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "PID and host unknown: its lock file has no readable info yet"

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self.info.unlink(missing_ok=True)
        self._lock.release()
