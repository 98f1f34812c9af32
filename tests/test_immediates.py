"""Strings the code compares as immediates: renaming them in the data would not reach the
comparison, so they are refused (verdict ``compared``), on x86-64 and arm64 alike.

Found running grpcio 1.84.2 shaded: ``ChannelArgsEndpointConfig::GetVoidPointer`` compares
its key with ``"grpc.experimental.event_engine"`` inline (``movabs rax, "grpc.exp"`` on
x86-64, ``movz``/``movk`` on arm64), the code that sets the key reads the literal from
``.rodata``; renamed there, the lookup took the other branch and the server crashed.
"""

from __future__ import annotations

import struct

from test_arm64 import RET, Insn, arm64_module, fixed, movz
from test_binaries import make_elf
from wheelshade.native.classify import classify

RODATA = b"\0pkg.submodule\0pkg.other.name\0pkg\0" + bytes(8)


def _verdicts(data: bytes) -> dict[str, str]:
    info = classify(data, "a.so", ["pkg"])
    found = {r.string: r.verdict for r in info.references + info.suspects if r.kind != "symbol"}
    for ref in info.suspects:
        assert "\n" not in ref.detail
    return found


def _x86(code: bytes) -> bytes:
    return make_elf(64, "little", RODATA, {}, [], code=code)


def test_x86_64_movabs_of_a_strings_first_bytes() -> None:
    compare = b"\x48\xb8pkg.subm\x48\x39\x07"  # movabs rax, "pkg.subm"; cmp [rdi], rax
    assert _verdicts(_x86(b"\x90" * 8 + compare + b"\xc3")) == {
        "pkg.submodule": "compared", "pkg.other.name": "", "pkg": ""}
    info = classify(_x86(compare), "a.so", ["pkg"])
    (ref,) = info.suspects
    assert ref.detail == ("the code compares text with 'pkg.subm' as an immediate (an "
                          "inlined comparison at 0x40), which renaming the string would not "
                          "reach")


def test_x86_64_the_same_bytes_outside_an_immediate_are_not_a_comparison() -> None:
    assert _verdicts(_x86(b"\x90\x90pkg.subm\xc3")) == {
        "pkg.submodule": "", "pkg.other.name": "", "pkg": ""}


def movk(rd: int, imm: int, hw: int, wide: bool = True) -> Insn:
    return fixed((0xF2800000 if wide else 0x72800000) | (hw << 21) | (imm << 5) | rd)


def _halves(text: bytes) -> list[int]:
    return list(struct.unpack("<4H", text))


def test_arm64_movz_and_movk_of_a_strings_first_bytes() -> None:
    low, *high = _halves(b"pkg.subm")

    def program(at: object) -> list[Insn]:
        return [movz(0, low), fixed(0xF9400021),  # ldr x1, [x1]: something in between
                *(movk(0, h, i + 1) for i, h in enumerate(high)),
                fixed(0xEB00003F), RET]  # cmp x1, x0
    assert _verdicts(arm64_module(RODATA, program)) == {
        "pkg.submodule": "compared", "pkg.other.name": "", "pkg": ""}


def test_arm64_a_constant_that_differs_is_not_a_comparison() -> None:
    low, *high = _halves(b"pkg.subx")

    def program(at: object) -> list[Insn]:
        return [movz(0, low), *(movk(0, h, i + 1) for i, h in enumerate(high)), RET]
    assert _verdicts(arm64_module(RODATA, program))["pkg.submodule"] == ""
