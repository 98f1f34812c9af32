"""arm64 reference analysis: ADRP pairs, ADR and literal loads, registers followed per function."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable

import pytest

from pypi import platform_wheels, wheels
from test_binaries import make_elf
from wheelshade.native import refs
from wheelshade.native.classify import classify
from wheelshade.native.elf import read_elf
from wheelshade.native.rust import is_rust

# --- a tiny AArch64 assembler: each helper takes the instruction's address -------------------

Insn = Callable[[int], int]


def adrp(rd: int, target: Callable[[], int]) -> Insn:
    def encode(pc: int) -> int:
        imm = ((target() & ~0xFFF) - (pc & ~0xFFF)) >> 12
        return 0x90000000 | ((imm & 3) << 29) | (((imm >> 2) & 0x7FFFF) << 5) | rd
    return encode


def adr(rd: int, target: Callable[[], int]) -> Insn:
    def encode(pc: int) -> int:
        imm = target() - pc
        return 0x10000000 | ((imm & 3) << 29) | (((imm >> 2) & 0x7FFFF) << 5) | rd
    return encode


def add_lo(rd: int, rn: int, target: Callable[[], int]) -> Insn:
    return lambda pc: 0x91000000 | ((target() & 0xFFF) << 10) | (rn << 5) | rd


def ldr_lo(rt: int, rn: int, target: Callable[[], int]) -> Insn:
    return lambda pc: 0xF9400000 | (((target() & 0xFFF) // 8) << 10) | (rn << 5) | rt


def ldr_literal(rt: int, target: Callable[[], int]) -> Insn:
    return lambda pc: 0x58000000 | ((((target() - pc) // 4) & 0x7FFFF) << 5) | rt


def bl(offset: int) -> Insn:
    return lambda pc: 0x94000000 | ((offset // 4) & 0x3FFFFFF)


def b(offset: int) -> Insn:
    return lambda pc: 0x14000000 | ((offset // 4) & 0x3FFFFFF)


def cbz(rt: int, offset: int) -> Insn:
    return lambda pc: 0xB4000000 | (((offset // 4) & 0x7FFFF) << 5) | rt


def movz(rd: int, imm: int) -> Insn:
    return lambda pc: 0xD2800000 | (imm << 5) | rd


def fixed(word: int) -> Insn:
    return lambda pc: word


NOP, RET = fixed(0xD503201F), fixed(0xD65F03C0)
EM_AARCH64 = 183


def arm64_module(rodata: bytes, program: Callable[[Callable[[bytes], int]], list[Insn]]) -> bytes:
    """An AArch64 ELF file: ``rodata``, and code from ``program(at)``, where ``at(text)`` is
    the address of the string ``text`` that starts after a NUL."""
    def build(code: bytes) -> bytes:
        data = bytearray(make_elf(64, "little", rodata, {}, [], code=code))
        struct.pack_into("<H", data, 18, EM_AARCH64)
        return bytes(data)
    holder: dict[str, bytes] = {}

    def where(text: bytes) -> int:
        data = holder["data"]
        elf = read_elf(data, "a.so")
        section = elf.section(".rodata")
        assert section is not None
        return section.addr + data[section.offset:section.end].index(b"\0" + text) + 1
    insns = program(where)
    holder["data"] = build(bytes(4 * len(insns)))
    text = read_elf(holder["data"], "a.so").section(".text")
    assert text is not None
    code = b"".join(struct.pack("<I", i(text.addr + 4 * n) & 0xFFFFFFFF)
                    for n, i in enumerate(insns))
    return build(code)


RODATA = b"\0\0\0\0\0\0\0\0pkg\0\0\0\0\0to_pkg\0pkg.sub\0other\0" + bytes(8)


def targets(data: bytes, texts: list[bytes]) -> dict[bytes, int]:
    elf = read_elf(data, "a.so")
    section = elf.section(".rodata")
    assert section is not None
    body = data[section.offset:section.end]
    return {t: section.addr + body.index(b"\0" + t) + 1 for t in texts}


def sites_to(data: bytes, text: bytes) -> list[refs.Site]:
    elf = read_elf(data, "a.so")
    (address,) = targets(data, [text]).values()
    return refs.find(data, elf, {address})


@pytest.mark.parametrize(("program", "found"), [
    # ADRP, something else, then the ADD that completes the address.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), NOP, add_lo(0, 8, lambda: at(b"pkg\0")), RET],
     True),
    # The page register is kept across a call only in a callee-saved register.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), bl(64), add_lo(0, 8, lambda: at(b"pkg\0")),
                 RET], False),
    (lambda at: [adrp(19, lambda: at(b"pkg\0")), bl(64), add_lo(0, 19, lambda: at(b"pkg\0")),
                 RET], True),
    # Overwritten in between: the ADD no longer forms the address.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), movz(8, 5), add_lo(0, 8, lambda: at(b"pkg\0")),
                 RET], False),
    # Two paths join with different pages in x8: neither is known after the join (a
    # "last ADRP per register" scan would take the second page).
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), cbz(0, 8), adrp(8, lambda: 0x40000),
                 add_lo(0, 8, lambda: at(b"pkg\0")), RET], False),
    # Both paths agree: known after the join.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), cbz(0, 8), NOP,
                 add_lo(0, 8, lambda: at(b"pkg\0")), RET], True),
    # A loop: the page set before it holds on every iteration.
    (lambda at: [adrp(19, lambda: at(b"pkg\0")), add_lo(0, 19, lambda: at(b"pkg\0")), bl(64),
                 cbz(0, -8), RET], True),
    # ... unless the loop's call changes it (x8 is caller-saved): the ADD would read
    # garbage on the second iteration, so no compiler emits it, and it is not counted.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), add_lo(0, 8, lambda: at(b"pkg\0")), bl(64),
                 cbz(0, -8), RET], False),
    # After an unconditional branch, code reached from elsewhere knows nothing.
    (lambda at: [adrp(8, lambda: at(b"pkg\0")), b(8), add_lo(0, 8, lambda: at(b"pkg\0")),
                 RET], False),
    # The address in one instruction: ADR, a literal load of a stored pointer, a load
    # through the page register.
    (lambda at: [adr(1, lambda: at(b"pkg\0")), RET], True),
    (lambda at: [ldr_literal(1, lambda: at(b"pkg\0")), RET], True),
    (lambda at: [adrp(9, lambda: at(b"pkg\0")), ldr_lo(1, 9, lambda: at(b"pkg\0")), RET], True),
], ids=["pair", "call-clobbers", "callee-saved", "overwritten", "join-differs", "join-agrees",
        "loop", "loop-clobbers", "after-branch", "adr", "literal", "load"])
def test_code_references_follow_registers(
    program: Callable[[Callable[[bytes], int]], list[Insn]], found: bool
) -> None:
    data = arm64_module(RODATA, program)
    sites = sites_to(data, b"pkg\0")
    assert [s.kind for s in sites] == (["arm64"] if found else [])


def test_decisions_are_the_x86_64_ones() -> None:
    """A merged tail (``"pkg"`` inside ``"to_pkg"``) used alone, and the longer string used
    too: the same verdicts as on x86-64. (This module has no function starts, so no arm64
    reference is exact enough to move: where a split would follow, it is refused; see
    test_arm64_split for splits.)"""
    def program(at: Callable[[bytes], int]) -> list[Insn]:
        return [adrp(8, lambda: at(b"pkg\0")), add_lo(0, 8, lambda: at(b"pkg\0")),
                add_lo(1, 8, lambda: at(b"pkg.sub")), bl(64), RET]
    info = classify(arm64_module(RODATA, program), "a.so", ["pkg"])
    assert info.machine == "aarch64"
    assert sorted((r.string, r.verdict) for r in info.references) == [
        ("pkg", ""), ("pkg.sub", "")]
    assert [(r.string, r.verdict) for r in info.embedded] == [("to_pkg", "never-alone")]

    def both(at: Callable[[bytes], int]) -> list[Insn]:
        return [adrp(8, lambda: at(b"to_pkg")), add_lo(0, 8, lambda: at(b"to_pkg")),
                add_lo(1, 8, lambda: at(b"to_pkg") + 3), RET]
    rodata = b"\0to_pkg\0other\0" + bytes(8)
    info = classify(arm64_module(rodata, both), "a.so", ["pkg"])
    assert [(r.string, r.verdict) for r in info.suspects] == [("to_pkg", "conflict")]


@pytest.mark.network
@pytest.mark.parametrize(("pin", "name"), [("greenlet==3.4.0", "greenlet"),
                                           ("markupsafe==3.0.3", "markupsafe"),
                                           ("cryptography==49.0.0", "cryptography")])
def test_same_decisions_for_the_x86_64_and_aarch64_builds(pin: str, name: str) -> None:
    """One release built for two architectures: the same strings are patched in each
    compiled module, nothing is refused (greenlet's bare name, an attribute name on both,
    sits in a different merged string on each; cryptography's Rust literals run into each
    other on both)."""
    builds = [wheels(pin), platform_wheels(
        ("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.13", pin)]
    seen = []
    for folder in builds:
        (whl,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(
            pin.replace("==", "-"))]
        decided: dict[str, list[str] | list[int]] = {}
        with zipfile.ZipFile(whl) as zf:
            for member in (n for n in zf.namelist() if n.endswith(".so")):
                data = zf.read(member)
                info = classify(data, member, [name])
                assert info.suspects == ()
                # The path from the name on. Rust literals run into their neighbours, which
                # the two linkers placed differently: there the occurrences are counted.
                texts = sorted(data[r.offset:data.index(b"\0", r.offset)].decode()
                               for r in info.references if r.kind != "symbol")
                decided[member.split(".")[0]] = [len(texts)] if is_rust(data) else texts
        seen.append(decided)
    assert seen[0] == seen[1]


def test_an_unread_packed_table_on_arm64_says_why() -> None:
    """Cython 3.3's LZSS streams are located through the code that inflates them (see
    arm64_lzss): where that is not found, the refusal says so."""
    from test_binaries import _packed_module
    from wheelshade.native.patching import problems

    data = bytearray(_packed_module(b"nothing here"))
    struct.pack_into("<H", data, 18, EM_AARCH64)
    info = classify(bytes(data), "m.so", ["pkg"])
    assert info.opaque_strings
    assert problems(info, {"pkg": "p12"}) == (
        "m.so: Cython (3.2.8) keeps module names in a packed string table that cannot be read "
        "(compressed in a format not supported, or an LZSS stream whose decoder loop was not "
        "found in aarch64 code)",)


def test_lzss_sizes_come_from_compares_and_wide_moves() -> None:
    """A decoder loop's bounds: ``cmp x3, #0x394``, and ``mov x27, #0x52ed; movk x27, #1,
    lsl #16`` (0x152ed, too wide for a compare's immediate)."""
    from wheelshade.native.arm64_lzss import _sizes

    cmp = 0xF100001F | (0x394 << 10) | (3 << 5)
    movz = 0xD2800000 | (0x52ED << 5) | 27
    movk = 0xF2800000 | (1 << 21) | (1 << 5) | 27
    unrelated_movk = 0xF2800000 | (1 << 21) | (1 << 5) | 9  # no MOVZ into x9 before it
    assert _sizes((cmp, movz, NOP(0), movk, unrelated_movk)) == {0x394, 0x52ED, 0x152ED}
