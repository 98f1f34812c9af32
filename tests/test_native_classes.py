"""Compiled-code classes of issue 14: literals that share their first byte (Rust's ``pkg``
and ``pkg.Type``), and compiled namespace portions."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from helpers import Venv, build_fixture, validate_record
from test_binaries import make_elf
from wheelshade import shade
from wheelshade.native import refs
from wheelshade.native.classify import classify
from wheelshade.native.elf import read_elf
from wheelshade.native.patching import patch_strings
from wheelshade.rewrite import rewrite_source

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
        # In a binary known to be Rust a literal starts where it is referenced (Rust keeps
        # literals back to back), so the name is patched there whatever runs into it.
        (ref,) = [r for r in info.references if r.name == "pkg"]
        assert ref.verdict == "used-alone" and "a Rust literal starts at 'pkg'" in ref.detail
        assert info.suspects == ()
        return
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


# --- a compiled namespace portion --------------------------------------------------------------

BLOCK = (
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'nsx.fastpart' or name.startswith('nsx.fastpart.'):\n"
    "            raise ImportError('original imported: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_compiled_namespace_portion_gets_a_same_length_top_level_name(tmp_path: Path) -> None:
    """``nsx.fastpart._speed`` imports ``"nsx.fastpart.helpers"`` by name. The namespace
    ``nsx`` is shared, so the whole prefix ``nsx.fastpart`` (12 bytes) becomes a 12-character
    top-level name, patched wherever the binary spells the prefix; ``"nsx"`` stays."""
    whl = build_fixture("cns", tmp_path / "dist", tmp_path / "src")
    result = shade([], [whl], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["nsx.fastpart"]
    assert len(new) == len("nsx.fastpart") and new.isidentifier()
    validate_record(report.output)
    with zipfile.ZipFile(report.output) as zf:
        names = zf.namelist()
        (so,) = [n for n in names if n.endswith(".so")]
        data = zf.read(so)
    assert so.startswith(f"{new}/_speed.") and f"{new}/helpers.py" in names
    assert b"nsx.fastpart" not in data and b"\0nsx\0" in data
    assert f"{new}.helpers".encode() in data
    env = Venv.create(tmp_path / "env")
    env.install(report.output, whl)
    code = (f"import {new} as s\nm = s.make()\n"
            "out = [s.__name__, s.origin(), type(m).__module__, s.namespace()]\n")
    alone = env.json(f"import json, sys\n{BLOCK}{code}"
                     "out.append(sorted(k for k in sys.modules if k.startswith('nsx')))\n"
                     "print(json.dumps(out))")
    assert alone == [new, f"{new}.helpers", f"{new}.helpers", "nsx", []]
    both = env.json(f"import json, sys\nimport nsx.fastpart as o\n{code}"
                    "out += [o.__name__, o.origin(), type(o.make()).__module__]\n"
                    "print(json.dumps(out))")
    assert both == [new, f"{new}.helpers", f"{new}.helpers", "nsx",
                    "nsx.fastpart", "nsx.fastpart.helpers", "nsx.fastpart.helpers"]


@pytest.mark.parametrize(("before", "after"), [
    ("from nsx import fastpart\n", "import nabcdefghijk as fastpart\n"),
    ("from nsx import fastpart as f, other, third; x = 1\n",
     "import nabcdefghijk as f; from nsx_1_h import other; from nsx import third; x = 1\n"),
    ("import nsx.fastpart.helpers\nnsx.fastpart.helpers.f()\n",
     "import nabcdefghijk.helpers\nnabcdefghijk.helpers.f()\n"),
    ("from nsx.fastpart.helpers import M\n", "from nabcdefghijk.helpers import M\n"),
    ("import nsx.fastpart as fp\n", "import nabcdefghijk as fp\n"),
    ("import nsx\nnsx.third.x()\n", None),
], ids=["from-ns", "mixed", "import-chain", "from-sub", "import-as", "other-portion"])
def test_imports_of_a_portion_with_a_top_level_name(before: str, after: str | None) -> None:
    mapping = {"nsx.fastpart": "nabcdefghijk", "nsx.other": "nsx_1_h.other"}
    new = rewrite_source(before.encode(), mapping, path="a.py")
    assert (new.decode() if new is not None else None) == after
