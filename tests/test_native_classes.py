"""Compiled-code classes of issue 14: literals that share their first byte (Rust's ``pkg``
and ``pkg.Type``), and compiled namespace portions."""

from __future__ import annotations

import struct

import pytest

from test_binaries import make_elf
from wheelshade.native import refs
from wheelshade.native.classify import classify
from wheelshade.native.elf import read_elf
from wheelshade.native.patching import patch_strings

RUST_MARK = b"\0/rustc/88aa/library/core\0"


def _literals(text: bytes, literals: list[tuple[bytes, int]], mark: bytes) -> bytes:
    """Literals back to back in ``text`` with no terminators, each stored as a ``&str``
    (pointer, length) the way Rust keeps them in data: ``(word, length)`` stores a pointer
    to ``word`` in ``text``, with ``length``."""
    def build(pairs: list[tuple[int, int]]) -> bytes:
        rodata = (mark + bytes(-len(mark) % 8)
                  + b"".join(struct.pack("<QQ", p, n) for p, n in pairs)
                  + b"\x01\x02" + text + b"\0")
        return make_elf(64, "little", rodata, {}, [])
    data = build([(0, n) for _, n in literals])
    base = data.index(b"\x01\x02" + text) + 2
    elf = read_elf(data, "r.so")
    pairs = []
    for word, length in literals:
        address = refs.address_of(elf, base + text.index(word))
        assert address is not None
        pairs.append((address, length))
    return build(pairs)


@pytest.mark.parametrize("mark", [RUST_MARK, b"\0"], ids=["rust", "unmarked"])
@pytest.mark.parametrize(("literals", "patched"), [
    # "pkg" and "pkg.Type" start at one byte; "X" and "more" are other literals around them.
    ([(b"X", 1), (b"pkg", 3), (b"pkg", 8), (b"more", 4)], True),
    ([(b"X", 1), (b"pkg", 8)], True),
    # A literal before the name that runs into it: renaming changes what it reads.
    ([(b"X", 9), (b"pkg", 3)], False),
    # A literal "pkg." is not a module path.
    ([(b"X", 1), (b"pkg", 4)], False),
])
def test_literals_that_share_the_name_as_their_head_are_patched(
    mark: bytes, literals: list[tuple[bytes, int]], patched: bool
) -> None:
    text = b"Xpkg.Typemore"
    data = _literals(text, literals, mark)
    info = classify(data, "r.so", ["pkg"])
    rust = mark == RUST_MARK
    if rust and not patched:
        pytest.skip("in a binary known to be Rust a literal starts where it is referenced")
    if not patched:
        assert [r.verdict for r in info.suspects] == ["conflict"]
        return
    assert info.suspects == ()
    (ref,) = [r for r in info.references if r.name == "pkg"]
    assert ref.verdict == "used-alone"
    if not rust:
        assert "'pkg.Type'" in ref.detail
    out = patch_strings(data, info, {"pkg": "p12"})
    assert b"Xp12.Typemore" in out and text not in out
