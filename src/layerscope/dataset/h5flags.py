"""Clear the "file is open" flags a killed HDF5 writer leaves in the superblock.

HDF5 1.10+ files with a version 2/3 superblock carry status flags: a writer sets them on
open and clears them on close. A writer killed while the file was open leaves them set, and
HDF5 then refuses every later open ("file is already open for write ... may use h5clear").
HDF5's own ``h5clear -s`` resets them; it is not shipped with h5py, so this module does the
same thing: it rewrites the flags byte and the superblock's checksum (Jenkins' lookup3
``hashlittle``, as HDF5 computes it). It is only called while layerscope's output lock is
held, so no live writer can own the file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from layerscope.errors import OutputError

__all__ = ["clear_status_flags", "lookup3"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    x, y, z = a, b, c
    for k in (4, 6, 8, 16, 19, 4):  # a-=c, a^=rot(c,k), c+=b; then the roles rotate
        x = ((x - z) & _MASK) ^ _rot(z, k)
        z = (z + y) & _MASK
        x, y, z = y, z, x
    return x, y, z


def _final(a: int, b: int, c: int) -> int:
    v = [a, b, c]
    for (x, y), k in zip([(2, 1), (0, 2), (1, 0)] * 3, (14, 11, 25, 16, 4, 14, 24), strict=False):
        v[x] = ((v[x] ^ v[y]) - _rot(v[y], k)) & _MASK
    return v[2]


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (byte-wise), HDF5's metadata checksum."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    pos = 0
    while length - pos > 12:
        w = struct.unpack_from("<3I", data, pos)
        a, b, c = _mix((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)
        pos += 12
    if length - pos == 0:
        return c
    tail = data[pos:] + bytes(12 - (length - pos))
    w = struct.unpack("<3I", tail)
    return _final((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)


def clear_status_flags(path: Path) -> bool:
    """Reset the superblock's status flags; False if they were already clear.

    Raises :class:`OutputError` when the file is not an HDF5 file this code understands
    (no signature, an old superblock version, or a checksum that does not match: then the
    superblock itself is damaged and rewriting it would hide that).
    """
    with open(path, "r+b") as fh:
        head = fh.read(2048 + 48)
        base = next((o for o in (0, 512, 1024, 2048) if head[o : o + 8] == _SIGNATURE), None)
        if base is None or head[base + 8] not in (2, 3):
            raise OutputError(
                f"{str(path)!r} is not an HDF5 file with a version 2/3 superblock, so the flags a "
                "killed writer left cannot be cleared. Move it away to start over."
            )
        size = 12 + 4 * head[base + 9]  # signature .. root address; offsets of size_of_offsets
        block = bytearray(head[base : base + size + 4])
        (stored,) = struct.unpack_from("<I", block, size)
        if lookup3(bytes(block[:size])) != stored:
            raise OutputError(
                f"The superblock of {str(path)!r} is damaged (checksum mismatch). Move the file "
                "away to start over."
            )
        if block[11] == 0:
            return False
        block[11] = 0
        struct.pack_into("<I", block, size, lookup3(bytes(block[:size])))
        fh.seek(base)
        fh.write(block)  # one small write: a kill leaves either the old or the new superblock
        fh.flush()
        os.fsync(fh.fileno())
    return True
