"""A merged tail used on its own and as part of the longer string, in arm64 code: a split.

When a linker merges ``"grpc"`` into the end of ``".google_grpc"`` and code uses both, the
name's own users must be moved to a standalone copy before the name is patched (a *split*).
On x86-64 a ``lea``'s 32-bit displacement is rewritten; on arm64 the address is built by an
``adrp`` (the page) and an ``add`` (the low 12 bits), and the ``adrp``'s register may serve
other strings of the same page. arm64_moves rewrites the pair where the ``adrp`` serves
nothing else, only the ``add`` where the copy shares the page, and refuses otherwise. Found by
the platform census (grpcio 1.84.2, ``grpc/_cython/cygrpc``: its standalone copies of
``"grpc"`` lie on other pages). The shaded wheel runs under qemu beside grpcio 1.85.3
(test_aarch64_shaded).
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from pypi import platform_wheels
from test_arm64 import RET, Insn, add_lo, adr, adrp, arm64_module, bl, fixed, ldr_literal, movz
from wheelshade.native import arm64, arm64_moves, refs
from wheelshade.native.classify import _classify, classify
from wheelshade.native.elf import read_elf
from wheelshade.native.model import BinaryInfo
from wheelshade.native.patching import patch_strings

PLATFORM = (("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.13")
MODULE = "grpc/_cython/cygrpc.cpython-313-aarch64-linux-gnu.so"

#: A standalone copy of "pkg" on the page of "to_pkg", and one a page further.
SAME_PAGE = b"\0\0\0\0\0\0\0\0pkg\0\0\0\0\0to_pkg\0other\0" + bytes(8)
OTHER_PAGE = b"\0to_pkg\0other\0" + bytes(0x1000) + b"\0pkg\0" + bytes(8)
At = Callable[[bytes], int]


def _tail(at: At) -> Callable[[], int]:
    return lambda: at(b"to_pkg") + 3


def _long(at: At) -> Callable[[], int]:
    return lambda: at(b"to_pkg")


def ldrb(rt: int, rn: int) -> Insn:
    return fixed(0x39400000 | (rn << 5) | rt)


def str_sp(rt: int) -> Insn:  # str xT, [sp, #8]
    return fixed(0xF9000400 | (31 << 5) | rt)


def _info(data: bytes) -> BinaryInfo:
    elf = read_elf(data, "a.so")
    text = elf.section(".text")
    assert text is not None
    # The synthetic module has no .eh_frame_hdr: its one function starts where .text does.
    return _classify(data, replace(elf, starts=(text.addr,)), "a.so", ["pkg"])


def _formed(data: bytes) -> dict[int, int]:
    """The address each ``add``/``adr`` of the code forms, decoded by Capstone alone
    (straight-line code: the last ``adrp`` of the base register gives the page)."""
    from capstone import arm64 as a64

    text = read_elf(data, "a.so").section(".text")
    assert text is not None
    pages: dict[int, int] = {}
    found: dict[int, int] = {}
    for insn in arm64.disassembler().disasm(data[text.offset:text.end], text.addr):
        ops = insn.operands
        if insn.id == a64.ARM64_INS_ADRP:
            pages[ops[0].reg] = int(ops[1].imm)
        elif insn.id == a64.ARM64_INS_ADR:
            found[insn.address] = int(ops[1].imm)
        elif insn.id == a64.ARM64_INS_ADD and ops[1].reg in pages:
            found[insn.address] = pages.pop(ops[1].reg) + int(ops[2].imm)
    return found


def _split(program: Callable[[At], list[Insn]], rodata: bytes) -> tuple[bytes, bytes, int]:
    """(the module, it patched with pkg -> qkg, the address of the copy used)."""
    data = arm64_module(rodata, program)
    info = _info(data)
    assert info.suspects == ()
    (split,) = [r for r in info.embedded if r.verdict == "split"]
    assert split.string == "to_pkg"
    (copy,) = [r for r in info.references if r.string == "pkg"]
    patched = patch_strings(data, info, {"pkg": "qkg"})
    assert patched[copy.offset:copy.offset + 4] == b"qkg\0"
    assert b"\0to_pkg\0" in patched  # the longer string keeps its text
    elf = read_elf(data, "a.so")
    address = refs.address_of(elf, copy.offset)
    assert address is not None
    return data, patched, address


def test_a_private_page_register_moves_with_its_add() -> None:
    """``adrp x0; add x0, x0`` for the name alone, the longer string through another
    register: both words are rewritten for a copy on another page, and Capstone reads the
    copy's address back; the longer string's pair is left as it was."""
    def program(at: At) -> list[Insn]:
        return [adrp(0, _tail(at)), add_lo(0, 0, _tail(at)), bl(64),
                adrp(1, _long(at)), add_lo(1, 1, _long(at)), bl(64), RET]
    data, patched, copy = _split(program, OTHER_PAGE)
    before, after = _formed(data), _formed(patched)
    text = read_elf(data, "a.so").section(".text")
    assert text is not None
    first, second = text.addr + 4, text.addr + 16
    assert copy // 0x1000 != before[first] // 0x1000
    assert after == {first: copy, second: before[second]}
    changed = [i for i in range(text.offset, text.end, 4) if data[i:i + 4] != patched[i:i + 4]]
    assert changed == [text.offset, text.offset + 4]


def test_a_shared_page_register_moves_only_the_add_within_its_page() -> None:
    def program(at: At) -> list[Insn]:
        return [adrp(8, _long(at)), add_lo(0, 8, _tail(at)), add_lo(1, 8, _long(at)),
                bl(64), RET]
    data, patched, copy = _split(program, SAME_PAGE)
    text = read_elf(data, "a.so").section(".text")
    assert text is not None
    before, after = _formed(patched), _formed(data)
    assert before[text.addr + 4] == copy != after[text.addr + 4]
    changed = [i for i in range(text.offset, text.end, 4) if data[i:i + 4] != patched[i:i + 4]]
    assert changed == [text.offset + 4]  # the adrp still serves "to_pkg"


def test_a_shared_page_register_takes_the_copy_on_its_page() -> None:
    """Two standalone copies: the nearer lies on the next page, out of reach of the shared
    ``adrp``; the farther one shares its page and is taken."""
    def program(at: At) -> list[Insn]:
        return [adrp(8, _long(at)), add_lo(0, 8, _tail(at)), add_lo(1, 8, _long(at)),
                bl(64), RET]
    probe = read_elf(arm64_module(SAME_PAGE, program), "a.so").section(".rodata")
    assert probe is not None
    head = b"\0pkg\0"
    # "to_pkg" ends its page; the nearer copy starts the next one.
    pad = -(probe.addr + len(head) + len(b"\0to_pkg\0")) % 0x1000
    rodata = head + bytes(pad) + b"\0to_pkg\0" + b"pkg\0" + bytes(8)
    data = arm64_module(rodata, program)
    info = _info(data)
    (split,) = [r for r in info.embedded if r.verdict == "split"]
    section = read_elf(data, "a.so").section(".rodata")
    assert section is not None
    far = section.offset + 1
    assert split.detail.endswith(f"its standalone copy at {far:#x}"), split.detail
    (move,) = info.redirects
    assert [w[0] for w in move.words] == [move.site.offset]  # the add alone


@pytest.mark.parametrize(("program", "why"), [
    # The page register serves the longer string too, and the copy is a page further.
    (lambda at: [adrp(8, _long(at)), add_lo(0, 8, _tail(at)), add_lo(1, 8, _long(at)),
                 bl(64), RET],
     r"serves \d+ other instruction\(s\) too, and the copy at 0x[0-9a-f]+ is not on its page"),
    # Kept for later: stored, so something else may read it.
    (lambda at: [adrp(8, _tail(at)), add_lo(0, 8, _tail(at)), str_sp(8), bl(64),
                 adrp(1, _long(at)), add_lo(1, 1, _long(at)), RET], r"serves \d+ other"),
    # A literal load reads the string's bytes; nothing to point elsewhere.
    (lambda at: [ldr_literal(0, _tail(at)), adrp(1, _long(at)), add_lo(1, 1, _long(at)), RET],
     "reads the string's bytes"),
], ids=["shared-other-page", "kept", "literal"])
def test_what_cannot_be_proven_is_refused_in_one_line(
    program: Callable[[At], list[Insn]], why: str
) -> None:
    info = _info(arm64_module(OTHER_PAGE, program))
    (suspect,) = info.suspects
    assert (suspect.string, suspect.verdict) == ("to_pkg", "conflict")
    assert "\n" not in suspect.detail and "'pkg'" in suspect.detail
    assert re.search(why, suspect.detail), suspect.detail
    assert info.redirects == ()


def test_adr_and_a_read_through_the_moved_address() -> None:
    """An ``adr`` is rewritten whole; ``ldrb w1, [x0]`` after the moved ``add x0`` reads
    the copy without being touched."""
    def program(at: At) -> list[Insn]:
        return [adr(2, _tail(at)), adrp(0, _tail(at)), add_lo(0, 0, _tail(at)), ldrb(1, 0),
                bl(64), adrp(3, _long(at)), add_lo(3, 3, _long(at)), RET]
    data, patched, copy = _split(program, OTHER_PAGE)
    text = read_elf(data, "a.so").section(".text")
    assert text is not None
    after = _formed(patched)
    assert after[text.addr] == after[text.addr + 8] == copy
    assert data[text.offset + 12:text.offset + 16] == patched[text.offset + 12:text.offset + 16]


def test_a_load_through_a_private_page_register() -> None:
    """``adrp x9; ldrb w1, [x9, #lo12]`` reads the name's first byte: both words move, and
    Capstone reads the copy's address from the page and the load's offset."""
    def program(at: At) -> list[Insn]:
        return [adrp(9, _tail(at)),
                lambda pc: 0x39400000 | ((_tail(at)() & 0xFFF) << 10) | (9 << 5) | 1,
                movz(9, 0), adrp(3, _long(at)), add_lo(3, 3, _long(at)), bl(64), RET]
    data, patched, copy = _split(program, OTHER_PAGE)
    text = read_elf(data, "a.so").section(".text")
    assert text is not None
    page, load = arm64.disassembler().disasm(patched[text.offset:text.offset + 8], text.addr)
    assert int(page.operands[1].imm) + int(load.operands[1].mem.disp) == copy


def test_register_reads_cover_capstones() -> None:
    """The safe side, checked on random words: every general register Capstone says an
    instruction reads is among those arm64_moves assumes it may read, and every register
    it counts as surely written Capstone says is written. (Capstone 5 reports Rd as read
    for the bitfield moves, where the ISA only writes it, wrong registers for ``adds``,
    and nothing for the memory-tagging instructions: those are left out.)"""
    def family(insn: object, reg: int) -> int | None:
        name = arm64.register_family(insn.reg_name(reg))  # type: ignore[attr-defined]
        return int(name[1:]) if name[:1] == "x" and name[1:].isdigit() else None
    quirks = re.compile(r"[us]bfiz|[us]bfx|asr|lsl|lsr|sxt|uxt|adds|cmn|addg|subg|subps?|irg|"
                        r"gmi|pacga")
    rng = random.Random(15)
    checked = 0
    for _ in range(40_000):
        word = rng.getrandbits(32)
        insn = next(arm64.disassembler().disasm(word.to_bytes(4, "little"), 0x1000), None)
        if insn is None or quirks.fullmatch(insn.mnemonic):
            continue
        try:
            read, written = insn.regs_access()
        except Exception:  # capstone's CsError: no access information
            continue
        op = arm64.decode(word.to_bytes(4, "little"), 0, 4, 0x1000)[0]
        if op[1] in (arm64.CALL, arm64.END, arm64.JUMP):
            continue
        function = arm64_moves._Function(word.to_bytes(4, "little"), 0, 4, 0x1000)
        assert {family(insn, r) for r in read} - {None, 31} <= function.reads(op), insn
        if arm64_moves._sure(op, word):
            assert set(op[5]) - {31} <= {family(insn, r) for r in written}, insn
        checked += 1
    assert checked > 10_000


# --- the real wheel ------------------------------------------------------------------------------


def _wheel(pin: str = "grpcio==1.84.2") -> Path:
    folder = platform_wheels(*PLATFORM, pin)
    (path,) = folder.glob(pin.replace("==", "-") + "-*.whl")
    return path


@pytest.mark.network
def test_the_merged_tail_is_split() -> None:
    """cygrpc's ``"grpc"`` is the tail of ``".google_grpc"``; its two own users are
    ``adrp x1; add x26, x1, #lo12`` pairs whose page register serves nothing else, so both
    move to a standalone copy of ``"grpc"`` on another page (adrp and add rewritten). Read
    without the set's evidence, its channel-argument keys count as module paths, and those
    the code compares inline are refused (test_immediates); with it they are no module
    paths and keep their bytes (test_native_evidence)."""
    with zipfile.ZipFile(_wheel()) as zf:
        data = zf.read(MODULE)
    info = classify(data, MODULE, ["grpc"])
    (split,) = [r for r in info.embedded if r.verdict == "split"]
    assert split.string == ".google_grpc"
    assert len(info.redirects) == 2
    assert all(m.site.kind == "arm64" and len(m.words) == 2 for m in info.redirects)
    assert {r.verdict for r in info.suspects} == {"compared"}
    assert {r.string[:8] for r in info.suspects} == {"grpc.exp", "grpc.sec", "grpc.pri"}
    # The moved pairs: Capstone reads the copy's address from each rewritten adrp + add.
    elf = read_elf(data, MODULE)
    copies = {refs.address_of(elf, r.offset) for r in info.references if r.string == "grpc"}
    patched = bytearray(data)
    for move in info.redirects:
        arm64_moves.rewrite(patched, move.words, MODULE)
        (page, _, _), (low, _, _) = move.words
        adrp_at, add_at = (refs.address_of(elf, o) for o in (page, low))
        assert adrp_at is not None and add_at is not None
        pair = arm64.disassembler().disasm(bytes(patched[page:page + 4]), adrp_at)
        add = arm64.disassembler().disasm(bytes(patched[low:low + 4]), add_at)
        address = int(next(pair).operands[1].imm) + int(next(add).operands[2].imm)
        assert address in copies
