"""Mach-O export tries: read every exported name, and write the trie again with one renamed.

dyld finds an exported symbol (``_PyInit_foo``) by walking a prefix tree from its root: each
node holds the symbol's export info when a name ends there, then its children, each under an
edge label (``"_PyInit_"``, ``"foo"``) with the offset of the child node. Names that share a
prefix share edges, so a rename cannot simply overwrite one label: ``_PyInit_foo`` renamed
``_PyInit_fxq`` may leave the ``f`` edge for a node of its own. The trie is decoded into
(name, export info) pairs, renamed, and encoded again as ld64 lays it out (nodes in depth-first
order, offsets as ULEB128); the new trie is written where the old one was, padded with zeros,
when it fits (it has the same names, so it does unless its offsets grow a byte).
"""

from __future__ import annotations

from wheelshade.native.macho_tables import encode_uleb, uleb

#: A trie's entries: exported name -> its export info (flags and address, as stored).
Entries = dict[bytes, bytes]


class TrieError(ValueError):
    """The trie cannot be read, or the rename cannot be written in its place."""


def read_trie(data: bytes | bytearray, start: int, size: int) -> Entries:
    """Every name the export trie at ``start`` (``size`` bytes) resolves, with its info."""
    out: Entries = {}
    seen: set[int] = set()
    todo: list[tuple[int, bytes]] = [(0, b"")]
    try:
        while todo:
            node, prefix = todo.pop()
            if node in seen or node >= size:
                raise TrieError(f"export trie node at {node:#x} is out of place")
            seen.add(node)
            at = start + node
            length, at = uleb(data, at)
            if length:
                out[prefix] = bytes(data[at:at + length])
            at += length
            count = data[at]
            at += 1
            for _ in range(count):
                end = data.index(b"\0", at, start + size)
                label = bytes(data[at:end])
                child, at = uleb(data, end + 1)
                todo.append((child, prefix + label))
    except (IndexError, ValueError) as exc:
        if isinstance(exc, TrieError):
            raise
        raise TrieError(f"export trie is truncated ({exc})") from None
    return out


class _Node:
    def __init__(self, entries: list[tuple[bytes, bytes]]) -> None:
        self.info = next((i for s, i in entries if not s), None)
        self.children: list[tuple[bytes, _Node]] = []
        groups: dict[int, list[tuple[bytes, bytes]]] = {}
        for suffix, info in entries:
            if suffix:
                groups.setdefault(suffix[0], []).append((suffix, info))
        for first in sorted(groups):
            group = groups[first]
            label = _common_prefix([s for s, _ in group])
            self.children.append(
                (label, _Node([(s[len(label):], i) for s, i in group])))
        self.offset = 0

    def walk(self) -> list[_Node]:
        return [self, *(n for _, child in self.children for n in child.walk())]

    def encode(self) -> bytes:
        head = encode_uleb(len(self.info)) + self.info if self.info is not None else b"\0"
        out = bytearray(head + bytes([len(self.children)]))
        for label, child in self.children:
            out += label + b"\0" + encode_uleb(child.offset)
        return bytes(out)


def _common_prefix(names: list[bytes]) -> bytes:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def build_trie(entries: Entries) -> bytes:
    """The export trie for ``entries``, laid out as ld64 does."""
    root = _Node(sorted(entries.items()))
    nodes = root.walk()
    if any(len(n.children) > 255 for n in nodes):
        raise TrieError("an export trie node would have more than 255 children")
    while True:  # offsets are ULEB128: grow them until every node stays where it is put
        at, moved = 0, False
        for node in nodes:
            if node.offset != at:
                node.offset, moved = at, True
            at += len(node.encode())
        if not moved:
            return b"".join(n.encode() for n in nodes)


def rename_export(out: bytearray, start: int, size: int, old: bytes, new: bytes) -> None:
    """Rename the export ``old`` to ``new`` in the trie at ``start``, in place; read back to
    check that ``new`` resolves to ``old``'s info and ``old`` no longer resolves."""
    entries = read_trie(out, start, size)
    if old not in entries:
        raise TrieError(f"the export trie has no {old.decode('utf-8', 'replace')}")
    if new in entries:
        raise TrieError(f"the export trie has {new.decode('utf-8', 'replace')} already")
    info = entries.pop(old)
    entries[new] = info
    trie = build_trie(entries)
    if len(trie) > size:
        raise TrieError(f"the renamed export trie needs {len(trie)} bytes, {size} are free")
    out[start:start + size] = trie + bytes(size - len(trie))
    again = read_trie(out, start, size)
    if again.get(new) != info or old in again or len(again) != len(entries):
        raise TrieError("the renamed export trie does not read back as written")
