"""Mach-O code signatures: page hashes checked and recomputed on real macOS wheels' slices,
certificate signatures re-signed ad hoc, malformed signatures refused in one line."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pypi import platform_wheels
from wheelshade.errors import WheelshadeError
from wheelshade.native import codesign
from wheelshade.native.codesign import CodeSignError

CPU_X86_64, CPU_ARM64 = 0x01000007, 0x0100000C
LC_SEGMENT_64 = 0x19


def _so(folder: Path) -> bytes:
    (wheel,) = [w for w in folder.glob("*.whl") if w.name.lower().startswith("markupsafe-3.0.2-")]
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith("-darwin.so")]
        return zf.read(name)


def _slices(fat: bytes) -> dict[int, bytes]:
    """The thin slices of a fat file (big-endian header: cputype, subtype, offset, size, align)."""
    magic, count = struct.unpack_from(">II", fat, 0)
    assert magic == 0xCAFEBABE
    out = {}
    for i in range(count):
        cpu, _, offset, size, _ = struct.unpack_from(">5I", fat, 8 + 20 * i)
        out[cpu] = fat[offset : offset + size]
    return out


@pytest.fixture(scope="module")
def arm64() -> bytes:
    return _so(platform_wheels(("macosx_11_0_arm64",), "3.11", "markupsafe==3.0.2"))


@pytest.fixture(scope="module")
def universal2() -> dict[int, bytes]:
    folder = platform_wheels(("macosx_10_9_universal2",), "3.11", "markupsafe==3.0.2")
    return _slices(_so(folder))


@pytest.fixture(params=["arm64", "universal2-arm64"])
def signed(request: pytest.FixtureRequest) -> bytes:
    if request.param == "arm64":
        data: bytes = request.getfixturevalue("arm64")
        return data
    slices: dict[int, bytes] = request.getfixturevalue("universal2")
    return slices[CPU_ARM64]


# -- an independent reading of the layout (load commands, sections, CodeDirectory) ----------


def _commands(data: bytes) -> list[tuple[int, int]]:
    """(cmd, offset) of each load command of a 64-bit slice."""
    ncmds = struct.unpack_from("<I", data, 16)[0]
    out, offset = [], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, offset)
        out.append((cmd, offset))
        offset += size
    return out


def _section(data: bytes, name: bytes) -> tuple[int, int]:
    """(file offset, size) of a section in a 64-bit slice."""
    for cmd, offset in _commands(data):
        if cmd == LC_SEGMENT_64:
            nsects = struct.unpack_from("<I", data, offset + 64)[0]
            for i in range(nsects):
                sect = offset + 72 + 80 * i
                if data[sect : sect + 16].rstrip(b"\0") == name:
                    size = struct.unpack_from("<Q", data, sect + 40)[0]
                    return struct.unpack_from("<I", data, sect + 48)[0], size
    raise AssertionError(f"no section {name!r}")


def _signature(data: bytes) -> tuple[int, int]:
    (offset,) = [o for c, o in _commands(data) if c == codesign.LC_CODE_SIGNATURE]
    dataoff, datasize = struct.unpack_from("<II", data, offset + 8)
    return dataoff, datasize


def _directories(data: bytes) -> list[dict[str, int]]:
    """Each CodeDirectory's hashing fields, read straight from the SuperBlob."""
    dataoff, _ = _signature(data)
    count = struct.unpack_from(">I", data, dataoff + 8)[0]
    out = []
    for i in range(count):
        slot, offset = struct.unpack_from(">II", data, dataoff + 12 + 8 * i)
        start = dataoff + offset
        if struct.unpack_from(">I", data, start)[0] != codesign.CSMAGIC_CODEDIRECTORY:
            continue
        fields = struct.unpack_from(">9I4B", data, start)
        out.append(
            dict(slot=slot, start=start, flags=fields[3], hashes=start + fields[4],
                 special=fields[6], code=fields[7], limit=fields[8], size=fields[9],
                 type=fields[10], shift=fields[12])
        )
    return out


def _hasher(kind: int) -> Callable[[bytes], bytes]:
    name, size = {1: ("sha1", 20), 2: ("sha256", 32)}[kind]
    return lambda b: hashlib.new(name, b).digest()[:size]


def _expected_code_slots(data: bytes, cd: dict[str, int]) -> list[bytes]:
    page, digest = 1 << cd["shift"], _hasher(cd["type"])
    return [digest(data[a : min(a + page, cd["limit"])]) for a in range(0, cd["limit"], page)]


def _code_slots(data: bytes, cd: dict[str, int]) -> list[bytes]:
    size = cd["size"]
    at = cd["hashes"]
    return [data[at + i * size : at + (i + 1) * size] for i in range(cd["code"])]


# -- real linker-signed slices ----------------------------------------------------------------


def test_linker_signed_slices_check_clean(signed: bytes) -> None:
    (cd,) = _directories(signed)
    assert cd["flags"] & (codesign.CS_LINKER_SIGNED | codesign.CS_ADHOC) == 0x20002
    assert codesign.has_signature(signed)
    assert not codesign.is_certificate_signed(signed)
    assert codesign.check(signed) == []


def test_unsigned_x86_64_slice_is_left_alone(universal2: dict[int, bytes]) -> None:
    x86 = universal2[CPU_X86_64]
    assert not codesign.has_signature(x86)
    assert codesign.check(x86) == []
    assert codesign.resign(x86, "x86.so") == (x86, None)


def test_patched_byte_is_named_then_resigned(signed: bytes) -> None:
    (cd,) = _directories(signed)
    start, size = _section(signed, b"__cstring")
    assert size
    at = start + size // 2
    patched = bytearray(signed)
    patched[at] ^= 0x20
    page = at >> cd["shift"]
    problems = codesign.check(bytes(patched))
    assert problems == [
        f"CodeDirectory (sha256): page {page} ({page << 12:#x}-{(page + 1) << 12:#x}) "
        "hash does not match"
    ]

    resigned, note = codesign.resign(bytes(patched), "_speedups.so")
    assert note is None and len(resigned) == len(signed)
    assert codesign.check(resigned) == []
    # Only the patched byte and the hash slot of its page differ from the original.
    slot = cd["hashes"] + page * cd["size"]
    changed = {i for i, (a, b) in enumerate(zip(signed, resigned, strict=True)) if a != b}
    assert at in changed and changed - {at} <= set(range(slot, slot + cd["size"]))
    assert _code_slots(resigned, cd) == _expected_code_slots(resigned, cd)


def test_resign_of_an_unpatched_slice_changes_nothing(signed: bytes) -> None:
    assert codesign.resign(signed, "_speedups.so") == (signed, None)


@pytest.mark.parametrize("kind", ["linker-signed", "certificate-signed"])
def test_lief_parses_the_resigned_slice(arm64: bytes, kind: str, tmp_path: Path) -> None:
    lief = pytest.importorskip("lief")
    original = arm64 if kind == "linker-signed" else _certificate_signed(arm64)
    patched = bytearray(original)
    start, _ = _section(original, b"__cstring")
    patched[start] ^= 0x20
    resigned, _ = codesign.resign(bytes(patched), "_speedups.so")
    path = tmp_path / "_speedups.so"
    path.write_bytes(resigned)
    binary = lief.MachO.parse(str(path)).at(0)
    assert binary.has_code_signature
    assert (binary.code_signature.data_offset, binary.code_signature.data_size) == _signature(
        resigned
    )


# -- a certificate-signed slice, built from a real one ----------------------------------------

TEAM = b"ABCDE12345"
REQUIREMENTS = (
    struct.pack(">IIIII", codesign.CSMAGIC_REQUIREMENTS, 52, 1, 3, 20)
    + struct.pack(">II", 0xFADE0C00, 32) + b"anchor apple generic".ljust(24, b"\0")
)
CMS = struct.pack(">II", codesign.CSMAGIC_BLOBWRAPPER, 8 + 512) + bytes(range(256)) * 2


def _code_directory(prefix: bytes, kind: int, special: list[bytes | None]) -> bytes:
    """A version 0x20400 CodeDirectory over all of ``prefix``, with a team and ``special``
    slots (slot k holds the hash of ``special[k - 1]``, zeros for None)."""
    digest = _hasher(kind)
    size = len(digest(b""))
    ident, team = b"fake.bundle\0", TEAM + b"\0"
    ident_at = 88
    team_at = ident_at + len(ident)
    hashes_at = team_at + len(team) + len(special) * size
    pages = [digest(prefix[a : a + 4096]) for a in range(0, len(prefix), 4096)]
    slots = b"".join(digest(b) if b else bytes(size) for b in reversed(special))
    body = ident + team + slots + b"".join(pages)
    header = struct.pack(
        ">9I4BI", codesign.CSMAGIC_CODEDIRECTORY, 88 + len(body), 0x20400, 0x10000, hashes_at,
        ident_at, len(special), len(pages), len(prefix), size, kind, 0, 12, 0,
    ) + struct.pack(">IIIQQQQ", 0, team_at, 0, 0, 0, 0x4000, 0)
    return header + body


def _certificate_signed(data: bytes) -> bytes:
    """``data`` with its signature replaced by a certificate-style one: a SHA-1 CodeDirectory,
    a SHA-256 alternate, a designated requirement and a (fake) CMS blob."""
    dataoff, _ = _signature(data)
    datasize = 2048
    head = bytearray(data[:dataoff])
    for cmd, offset in _commands(data):
        if cmd == codesign.LC_CODE_SIGNATURE:
            struct.pack_into("<II", head, offset + 8, dataoff, datasize)
        elif cmd == LC_SEGMENT_64 and head[offset + 8 : offset + 18] == b"__LINKEDIT":
            fileoff = struct.unpack_from("<Q", head, offset + 40)[0]
            struct.pack_into("<Q", head, offset + 48, dataoff + datasize - fileoff)
    prefix = bytes(head)
    special: list[bytes | None] = [None, REQUIREMENTS]
    blobs = [
        (0, _code_directory(prefix, 1, special)),
        (2, REQUIREMENTS),
        (0x1000, _code_directory(prefix, 2, special)),
        (0x10000, CMS),
    ]
    offset, index = 12 + 8 * len(blobs), b""
    for slot, blob in blobs:
        index += struct.pack(">II", slot, offset)
        offset += len(blob)
    superblob = struct.pack(">III", codesign.CSMAGIC_EMBEDDED_SIGNATURE, offset, len(blobs))
    superblob += index + b"".join(b for _, b in blobs)
    assert len(superblob) <= datasize
    return prefix + superblob.ljust(datasize, b"\0")


def test_certificate_signed_slice_is_resigned_ad_hoc_with_a_note(arm64: bytes) -> None:
    signed = _certificate_signed(arm64)
    assert codesign.check(signed) == []
    assert codesign.is_certificate_signed(signed)
    patched = bytearray(signed)
    start, _ = _section(signed, b"__cstring")
    patched[start] ^= 0x20
    assert [p.split(":")[0] for p in codesign.check(bytes(patched))] == [
        "CodeDirectory (sha1)", "alternate CodeDirectory 0 (sha256)",
    ]

    resigned, note = codesign.resign(bytes(patched), "pkg/_speedups.so")
    assert note == "certificate signature removed; re-signed ad hoc"
    assert len(resigned) == len(signed)
    dataoff, datasize = _signature(resigned)
    assert resigned[:dataoff] == patched[:dataoff]  # nothing before the signature changed
    assert codesign.check(resigned) == []
    assert not codesign.is_certificate_signed(resigned)
    length = struct.unpack_from(">I", resigned, dataoff + 4)[0]
    assert length < datasize and not any(resigned[dataoff + length : dataoff + datasize])
    directories = _directories(resigned)
    assert [(cd["slot"], cd["type"]) for cd in directories] == [(0, 1), (0x1000, 2)]
    for cd in directories:
        assert cd["flags"] & codesign.CS_ADHOC
        assert struct.unpack_from(">I", resigned, cd["start"] + 52)[0] == 0  # no team
        assert _code_slots(resigned, cd) == _expected_code_slots(resigned, cd)
        requirements_slot = cd["hashes"] - 2 * cd["size"]
        assert resigned[requirements_slot : requirements_slot + cd["size"]] == _hasher(
            cd["type"]
        )(struct.pack(">III", codesign.CSMAGIC_REQUIREMENTS, 12, 0))


# -- malformed signatures: one-line CodeSignError, never a traceback ---------------------------


def _edit_super(offset: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        out = bytearray(data)
        struct.pack_into(fmt, out, _signature(data)[0] + offset, value)
        return bytes(out)

    return edit


def _edit_cd(offset: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    return _edit_super(20 + offset, fmt, value)  # the one CodeDirectory starts at byte 20


MALFORMED: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("truncated", lambda d: d[: len(d) - 100], r"runs past the end of the file .* truncated"),
    ("tiny", lambda d: d[:16], r"too short for a Mach-O header"),
    ("not-macho", lambda d: b"\x7fELF" + d[4:], r"not a thin little-endian Mach-O"),
    ("super-magic", _edit_super(0, ">I", 0xFADE0CC1), r"not an embedded SuperBlob"),
    ("super-length", _edit_super(4, ">I", 0x10000), r"the SuperBlob says 65536 bytes"),
    ("blob-offset", _edit_super(16, ">I", 4000), r"blob 0x0 starts outside the SuperBlob"),
    ("blob-length", _edit_cd(4, ">I", 0x10000), r"blob 0x0 has length 65536"),
    ("cd-magic", _edit_cd(0, ">I", 0xFADE0C01), r"slot 0x0 does not hold a CodeDirectory"),
    ("cd-version", _edit_cd(8, ">I", 0x10000), r"unsupported version 0x10000"),
    ("hash-type", _edit_cd(37, ">B", 9), r"unknown hash type 9"),
    ("hash-size", _edit_cd(36, ">B", 20), r"hash size 20 for hash type 2"),
    ("slots", _edit_cd(28, ">I", 99), r"its hash slots lie outside the blob"),
    ("pages", _edit_cd(28, ">I", 2), r"2 code slots for 13 pages"),
    ("scatter", _edit_cd(44, ">I", 4), r"scatter vector"),
    ("limit", _edit_cd(32, ">I", 0x100000), r"past the signature"),
    ("page-size", _edit_cd(39, ">B", 40), r"implausible page size"),
]


@pytest.mark.parametrize(
    ("edit", "pattern"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_signature_is_refused_in_one_line(
    arm64: bytes, edit: Callable[[bytes], bytes], pattern: str
) -> None:
    bad = edit(arm64)
    for call in (lambda: codesign.check(bad, path="pkg/_x.so"),
                 lambda: codesign.resign(bad, "pkg/_x.so")):
        with pytest.raises(CodeSignError, match=pattern) as info:
            call()
        assert isinstance(info.value, WheelshadeError)
        text = str(info.value)
        assert text.startswith("pkg/_x.so: code signature: ") and "\n" not in text
        assert "codesign" in text  # what to do


def test_overlapping_blobs_are_refused(arm64: bytes) -> None:
    signed = bytearray(_certificate_signed(arm64))
    dataoff, _ = _signature(bytes(signed))
    alternate = struct.unpack_from(">I", signed, dataoff + 32)[0]
    struct.pack_into(">I", signed, dataoff + 24, alternate)  # requirements on the alternate CD
    with pytest.raises(CodeSignError, match=r"blobs 0x2 and 0x1000 overlap"):
        codesign.resign(bytes(signed), "x.so")


@pytest.mark.parametrize("kind", ["linker-signed", "certificate-signed"])
def test_random_damage_is_refused_or_resigned_never_a_traceback(arm64: bytes, kind: str) -> None:
    import random

    original = arm64 if kind == "linker-signed" else _certificate_signed(arm64)
    dataoff, _ = _signature(original)
    rnd = random.Random(15)
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rnd.randint(1, 4)):
            start, end = rnd.choice([(0, 0x600), (dataoff, dataoff + 200)])
            data[rnd.randrange(start, end)] = rnd.randrange(256)
        if rnd.random() < 0.1:
            del data[rnd.randrange(len(data)) :]
        try:
            resigned, _ = codesign.resign(bytes(data), "x.so")
        except CodeSignError as err:
            assert "\n" not in str(err)
            continue
        assert codesign.check(resigned) == []
