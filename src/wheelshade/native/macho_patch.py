"""What a patched Mach-O file needs redone, slice by slice: the ``PyInit_`` name, the signature.

Strings are patched in place over the whole file (their offsets count from its start, see
macho.py). Then each slice of a fat file is finished on its own, as a thin image: the init
function's name is renamed in the ``LC_SYMTAB`` string table (same length: no offset moves)
and in the export trie, which dyld searches (see macho_trie); and every CodeDirectory page
hash is recomputed (codesign.py), since arm64 macOS kills a process that maps a page whose
hash does not match, and the linker signs every arm64 image ad hoc. Each slice keeps its
size, so the fat header stays as it is. A module that moves, or whose libraries' folder is
renamed, gets its ``@loader_path`` load commands pointed at the new place (relink).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from wheelshade.errors import RewriteError
from wheelshade.native import codesign
from wheelshade.native.elf import BinaryFormatError
from wheelshade.native.macho import DylibPath, Slice, read_macho
from wheelshade.native.macho_trie import TrieError, read_trie, rename_export
from wheelshade.native.model import INIT_PREFIX


def finish(
    data: bytes, path: str, init: tuple[str, str] | None = None
) -> tuple[bytes, list[str]]:
    """``data`` with ``PyInit_<old>`` renamed to ``PyInit_<new>`` (``init``) in every slice
    and every slice's code signature made valid again; notes for certificate signatures
    replaced by ad hoc ones. Raises RewriteError when a slice cannot be finished."""
    out = bytearray(data)
    notes: list[str] = []
    for part in read_macho(data, path):
        thin = bytes(out[part.offset:part.offset + part.size])
        try:
            if init is not None:
                thin = rename_init(thin, path, *init)
            if part.signed:
                thin, note = codesign.resign(thin, path)
                if note:
                    notes.append(f"{path} ({part.elf.machine}): {note}")
        except (TrieError, ValueError) as exc:
            raise RewriteError(f"cannot patch it: {exc}", path=path) from None
        if len(thin) != part.size:  # pragma: no cover - every edit keeps its length
            raise RewriteError("a slice changed its size", path=path)
        out[part.offset:part.offset + part.size] = thin
    return bytes(out), notes


def rename_init(thin: bytes, path: str, old: str, new: str) -> bytes:
    """One thin image with ``_PyInit_<old>`` renamed ``_PyInit_<new>`` (same byte length)
    in its symbol table and export trie, both read back to check."""
    raw_old = ("_" + INIT_PREFIX + old).encode("utf-8")
    raw_new = ("_" + INIT_PREFIX + new).encode("utf-8")
    if len(raw_old) != len(raw_new):
        raise ValueError(f"{old!r} -> {new!r} changes the byte length")
    (image,) = read_macho(thin, path)
    before = _names(image)
    out = bytearray(thin)
    hits = [s for s in image.elf.symbols if s.name == INIT_PREFIX + old]
    if not any(s.defined for s in hits):
        raise ValueError(f"defines no {INIT_PREFIX}{old} symbol")
    for symbol in hits:
        at = symbol.name_offset - 1  # the "_" before the C name
        if out[at:at + len(raw_old) + 1] != raw_old + b"\0":
            raise ValueError(f"the symbol name at {at:#x} is not {raw_old!r}")
        out[at:at + len(raw_old)] = raw_new
    start, size = image.exports
    if size:
        rename_export(out, start, size, raw_old, raw_new)
    try:
        (after,) = read_macho(bytes(out), path)
    except BinaryFormatError as exc:  # pragma: no cover - only names changed
        raise ValueError(exc.reason) from None
    expected = [INIT_PREFIX + new if n == INIT_PREFIX + old else n for n in before]
    if _names(after) != expected:
        raise ValueError("renaming the init symbol changed another symbol's name")
    return bytes(out)


def _names(image: Slice) -> list[str]:
    return [s.name for s in image.elf.symbols]


def exported(thin: bytes, path: str) -> frozenset[bytes]:
    """The names one thin image's export trie resolves (``_PyInit_foo``)."""
    (image,) = read_macho(thin, path)
    start, size = image.exports
    return frozenset(read_trie(thin, start, size)) if size else frozenset()


def relink(data: bytes, path: str, old: Sequence[str], new: Sequence[str]) -> bytes:
    """``data`` with each load-command path (``LC_LOAD_DYLIB``, ``LC_ID_DYLIB``,
    ``LC_RPATH``) that is in ``old`` set to the path at the same place in ``new``, in every
    slice, and the slices re-signed. A longer path takes the command's padding, else grows
    the command into the free space between the load commands and the first section;
    raises RewriteError when there is none (as ``install_name_tool`` would refuse)."""
    paths = dict(zip(old, new, strict=True))
    out = bytearray(data)
    for part in read_macho(data, path):
        thin = bytearray(out[part.offset:part.end])
        for index, link in enumerate(part.dylibs):
            if paths.get(link.path, link.path) != link.path:
                # An edit may move the commands after it: read them again each time.
                (image,) = read_macho(bytes(thin), path)
                _set_path(thin, image, image.dylibs[index], paths[link.path], path)
        (after,) = read_macho(bytes(thin), path)
        wanted = [paths.get(d.path, d.path) for d in part.dylibs]
        if [d.path for d in after.dylibs] != wanted:  # pragma: no cover - checked per edit
            raise RewriteError("its load commands do not read back as written", path=path)
        out[part.offset:part.end] = codesign.resign(bytes(thin), path)[0]
    return bytes(out)


def _set_path(thin: bytearray, image: Slice, link: DylibPath, new: str, path: str) -> None:
    raw = new.encode("utf-8") + b"\0"
    if len(raw) <= link.room:
        thin[link.offset:link.offset + link.room] = raw.ljust(link.room, b"\0")
        return
    start = link.header
    (cmdsize,) = struct.unpack_from("<I", thin, start + 4)
    head = link.offset - start
    grow = -(-(head + len(raw)) // 8) * 8 - cmdsize
    free = image.first_section - image.commands_end
    if grow > free or any(thin[image.commands_end:image.commands_end + grow]):
        raise RewriteError(
            f"cannot set a load command path to {new!r}: it needs {grow} more bytes and the "
            f"header has {max(free, 0)} free",
            path=path, hint="relink the wheel with -headerpad_max_install_names, or --drop it")
    command = bytearray(thin[start:start + head]) + raw.ljust(cmdsize + grow - head, b"\0")
    struct.pack_into("<I", command, 4, cmdsize + grow)
    rest = thin[start + cmdsize:image.commands_end]
    thin[start:image.commands_end + grow] = command + rest
    (sizeofcmds,) = struct.unpack_from("<I", thin, image.sizeofcmds_at - image.offset)
    struct.pack_into("<I", thin, image.sizeofcmds_at - image.offset, sizeofcmds + grow)
