"""Rewrite a packed Cython string table: rename its module paths, compress it again."""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Iterator, Mapping

import zopfli.zlib

from wheelshade.native import lzss
from wheelshade.native.cytable import Codec, Table


def rewrite(table: Table, renames: Mapping[str, str]) -> bytes:
    """The table's new stored bytes, with its module paths renamed.

    A plain table keeps its size. A compressed one is compressed again: the first setting
    whose stream fits the old size is taken, else the smallest stream found (the caller
    moves it, or refuses). Raises ValueError when a new name differs in byte length.
    """
    text = bytearray(table.text)
    for at, name in table.module_paths(renames):
        old, new = name.encode("utf-8"), renames[name].encode("utf-8")
        if len(old) != len(new):
            raise ValueError(f"{name!r} -> {renames[name]!r} changes the byte length")
        text[at:at + len(old)] = new
    if table.codec == "plain":
        return bytes(text)
    if table.codec == "lzss":
        stream = lzss.encode(bytes(text), table.size)
        if stream is None:
            raise ValueError(f"the lzss string table at {table.offset:#x} cannot be packed "
                             f"into its {table.size} bytes once renamed")
        return stream
    return _compress(table.codec, bytes(text), table.size)


def _compress(codec: Codec, text: bytes, room: int) -> bytes:
    """The first compression of ``text`` that fits ``room`` bytes (the usual settings
    first), or else the smallest one tried."""
    best = b""
    for out in _compressions(codec, text):
        if len(out) <= room:
            return out
        if not best or len(out) < len(best):
            best = out
    return best


def _compressions(codec: Codec, text: bytes) -> Iterator[bytes]:
    """Streams of ``text``, most likely to fit first. Cython packs with zlib's level 9;
    Zopfli's slower, optimal parse usually wins back the few bytes a rename costs."""
    if codec == "bz2":
        for level in range(9, 0, -1):
            yield bz2.compress(text, level)
        return
    yield zlib.compress(text, 9)
    yield zopfli.zlib.compress(text, numiterations=15 if len(text) < 1 << 20 else 5)
    for level in range(9, 0, -1):
        for mem_level in range(9, 0, -1):
            for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED):
                packer = zlib.compressobj(level, zlib.DEFLATED, 15, mem_level, strategy)
                yield packer.compress(text) + packer.flush()
