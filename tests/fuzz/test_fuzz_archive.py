"""Fuzz the wheel reader: random and mutated zip bytes raise only ArchiveError/WheelFormatError."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from wheelshade.errors import ArchiveError, WheelFormatError
from wheelshade.wheel.archive import WheelReader

DIST = "demo-1.0.dist-info"
FILES = {
    "demo/__init__.py": b"from demo import sub\n",
    "demo/sub.py": b"X = 1\n" * 20,
    "demo/data/blob.bin": bytes(range(256)) * 8,
    f"{DIST}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
SIGNATURES = (b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07")


def record() -> bytes:
    rows = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip('=')},"
        f"{len(data)}"
        for name, data in FILES.items()
    ]
    return ("\n".join([*rows, f"{DIST}/RECORD,,"]) + "\n").encode()


def seed(
    compression: int, *, zip64: bool = False, comment: bytes = b"", dirs: bool = False
) -> bytes:
    """A valid wheel, as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        if dirs:
            zf.writestr("demo/", b"")
        for name, data in [*FILES.items(), (f"{DIST}/RECORD", record())]:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = 0o100644 << 16
            with zf.open(info, "w", force_zip64=zip64) as dest:
                dest.write(data)
        zf.comment = comment
    return buffer.getvalue()


SEEDS = [
    seed(zipfile.ZIP_DEFLATED),
    seed(zipfile.ZIP_STORED, dirs=True),
    seed(zipfile.ZIP_DEFLATED, zip64=True),
    seed(zipfile.ZIP_BZIP2, comment=b"an archive comment"),
    seed(zipfile.ZIP_LZMA),
]
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid wheel with a few random edits, many of them to zip header fields."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["field", "field", "field", "byte", "splice", "cut", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "field":
            headers = [i for sig in SIGNATURES for i in _find_all(data, sig)]
            if not headers:
                continue
            start = draw(st.sampled_from(headers)) + draw(st.integers(4, 56))
            fmt = draw(st.sampled_from(["<H", "<L", "<Q"]))
            value = draw(st.sampled_from(INTERESTING) | st.integers(0, 0xFFFF))
            value &= (1 << (8 * struct.calcsize(fmt))) - 1
            if start + struct.calcsize(fmt) <= len(data):
                struct.pack_into(fmt, data, start, value)
        elif op == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "splice":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _find_all(data: bytearray, sig: bytes) -> Iterator[int]:
    at = data.find(sig)
    while at >= 0:
        yield at
        at = data.find(sig, at + 1)


NAMES = st.one_of(
    st.sampled_from(
        [
            "demo/__init__.py",
            "demo/sub.py",
            "demo/",
            "demo",
            "Demo/SUB.py",
            "demo/sub.py/x",
            f"{DIST}/METADATA",
            f"{DIST}/WHEEL",
            f"{DIST}/RECORD.jws",
            "other-2.0.dist-info/METADATA",
            "demo-1.0.data/purelib/x.py",
        ]
    ),
    # zipfile cuts a name at its first NUL, and cannot write an empty one.
    st.text(alphabet="ad/.\\:\x00\n \u00e9\u0301", min_size=1, max_size=12).filter(
        lambda name: not name.startswith("\x00")
    ),
)
VERSIONS = st.sampled_from(
    ["1.0", "1.9", "2.0", "1", "0.1", "1.x", "", " 1.0 ", "\uff11.0", "1..0", "9" * 5000]
)


def record_row(name: str, data: bytes, how: str) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
    return {
        "right": f"{name},sha256={digest},{len(data)}",
        "wrong-hash": f"{name},sha256=AAAA,{len(data)}",
        "no-hash": f"{name},,",
        "md5": f"{name},md5={digest},{len(data)}",
        "wrong-size": f"{name},sha256={digest},{len(data) + 1}",
    }[how]


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A well-formed zip whose names, RECORD and WHEEL file are random."""
    entries = draw(st.lists(st.tuples(NAMES, st.binary(max_size=32)), max_size=6))
    if draw(st.booleans()):
        entries.append((f"{DIST}/WHEEL", f"Wheel-Version: {draw(VERSIONS)}\n".encode()))
    how = st.sampled_from(["right", "right", "wrong-hash", "no-hash", "md5", "wrong-size"])
    rows = [record_row(name, data, draw(how)) for name, data in entries]
    rows += draw(st.lists(st.text(max_size=30), max_size=2))
    if draw(st.booleans()):
        entries.append((f"{DIST}/RECORD", "\n".join(rows).encode("utf-8", "surrogatepass")))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buffer, "w", draw(st.sampled_from(COMPRESSIONS))) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return buffer.getvalue()


COMPRESSIONS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
archives = st.one_of(
    mutated(),
    structured(),
    st.binary(max_size=512),
    st.binary(max_size=200).map(lambda tail: b"PK\x05\x06" + tail),
)


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "demo-1.0-py3-none-any.whl"


def read_everything(path: Path) -> None:
    with WheelReader(path) as reader:
        for member in reader.members:
            with reader.open(member.name) as stream:
                while stream.read(1 << 16):
                    pass
        reader.check_wheel_version()
        reader.verify_record()


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_seeds_are_valid(wheel_path: Path, index: int) -> None:
    wheel_path.write_bytes(SEEDS[index])
    read_everything(wheel_path)


@given(data=archives)
@example(data=SEEDS[0][:-1])
@example(data=SEEDS[2].replace(b"PK\x06\x07", b"PK\x06\x08"))
def test_reader_raises_only_its_own_errors(wheel_path: Path, data: bytes) -> None:
    wheel_path.write_bytes(data)
    try:
        read_everything(wheel_path)
    except (ArchiveError, WheelFormatError) as exc:
        assert exc.path == str(wheel_path)
        assert "\n" not in str(exc)
        event(f"{type(exc).__name__}: {_kind(exc.message)}")
    else:
        event("read")


def _kind(message: str) -> str:
    """The message without names and numbers, to group the outcomes in the statistics."""
    return re.sub(r"\(.*|[0-9]+|'.*?'|\S*/\S*", "_", message)[:60]
