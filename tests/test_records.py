"""Tests for the RECORD model: hashing, parsing and serialising."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from wheelshade.errors import WheelFormatError
from wheelshade.wheel.records import Hasher, RecordEntry, hash_bytes, parse_record, serialise_record

WHEEL = "dist/demo-1.0-py3-none-any.whl"


def expected_hash(data: bytes, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm}=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def error(message: str) -> str:
    return rf"^{re.escape(WHEEL)}: {message}$"


@pytest.mark.parametrize("data", [b"", b"x", b"hello world\n", bytes(range(256)) * 100])
def test_hash_bytes_is_urlsafe_sha256_without_padding(data: bytes) -> None:
    result = hash_bytes(data)
    assert result == expected_hash(data)
    assert "=" not in result.removeprefix("sha256=")
    assert "+" not in result and "/" not in result


def test_hasher_streams_to_the_same_hash_and_counts_bytes() -> None:
    data = bytes(range(256)) * 1000
    hasher = Hasher()
    for start in range(0, len(data), 777):
        hasher.update(data[start : start + 777])
    assert hasher.digest() == hash_bytes(data)
    assert hasher.size == len(data)


def test_hasher_other_algorithm() -> None:
    hasher = Hasher("sha512")
    hasher.update(b"abc")
    assert hasher.digest() == expected_hash(b"abc", "sha512")
    assert hasher.size == 3


def test_parse_record() -> None:
    digest = expected_hash(b"print(1)\n")
    data = (
        f"demo/__init__.py,{digest},9\n"
        '"demo/a,b.py",sha256=abc_-,0\n'
        "\n"
        "demo-1.0.dist-info/RECORD,,\r\n"
    ).encode()
    assert parse_record(data, wheel=WHEEL) == [
        RecordEntry("demo/__init__.py", digest, 9),
        RecordEntry("demo/a,b.py", "sha256=abc_-", 0),
        RecordEntry("demo-1.0.dist-info/RECORD", None, None),
    ]


def test_parse_record_accepts_non_ascii_paths_and_no_final_newline() -> None:
    data = "démo/ü.py,,".encode()
    assert parse_record(data, wheel=WHEEL) == [RecordEntry("démo/ü.py", None, None)]


def test_parse_record_rejects_non_utf8() -> None:
    with pytest.raises(
        WheelFormatError, match=error(r"RECORD is not valid UTF-8 \(byte 0xff at offset 2\)")
    ) as info:
        parse_record(b"a,\xff,", wheel=WHEEL)
    assert info.value.path == WHEEL


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.py,sha256=x", r"RECORD line 1 has 2 fields, expected 3 \(path,hash,size\)"),
        ("a.py,sha256=x,1,extra", r"RECORD line 1 has 4 fields, expected 3 \(path,hash,size\)"),
        (",sha256=x,1", r"RECORD line 1 has an empty path"),
        ("a.py,sha256=x,-1", r"RECORD line 1 \(a\.py\): size '-1' is not a non-negative integer"),
        (
            "a.py,sha256=x,1.5",
            r"RECORD line 1 \(a\.py\): size '1\.5' is not a non-negative integer",
        ),
        (
            "a.py,deadbeef,1",
            r"RECORD line 1 \(a\.py\): hash 'deadbeef' is not <algorithm>=<base64>",
        ),
        (
            "a.py,sha256=ab==,1",
            r"RECORD line 1 \(a\.py\): hash 'sha256=ab==' is not <algorithm>=<base64>",
        ),
        (
            "a.py,md5=abc,1",
            r"RECORD line 1 \(a\.py\): hash algorithm 'md5' is not allowed "
            r"\(use sha256 or stronger\)",
        ),
        (
            "a.py,sha1=abc,1",
            r"RECORD line 1 \(a\.py\): hash algorithm 'sha1' is not allowed "
            r"\(use sha256 or stronger\)",
        ),
    ],
)
def test_parse_record_rejects_malformed_rows(line: str, message: str) -> None:
    with pytest.raises(WheelFormatError, match=error(message)):
        parse_record(line.encode() + b"\n", wheel=WHEEL)


def test_parse_record_reports_every_malformed_row() -> None:
    lines = ["ok.py,,"] + [f"bad{i}.py,,x" for i in range(7)] + ["short"]
    with pytest.raises(WheelFormatError) as info:
        parse_record("\n".join(lines).encode(), wheel=WHEEL)
    message = str(info.value)
    assert re.match(
        error(
            r"8 malformed RECORD rows: RECORD line 2 \(bad0\.py\): size 'x' is not a non-negative "
            r"integer; .*; RECORD line 6 \(bad4\.py\): .*; and 3 more"
        ),
        message,
    )
    assert "bad5.py" not in message


def test_serialise_record_round_trips_in_order_with_newlines() -> None:
    entries = [
        RecordEntry("z.py", hash_bytes(b"z"), 1),
        RecordEntry('a,"quoted".py', hash_bytes(b""), 0),
        RecordEntry("demo-1.0.dist-info/RECORD", None, None),
    ]
    data = serialise_record(entries)
    assert b"\r" not in data
    assert data.endswith(b"demo-1.0.dist-info/RECORD,,\n")
    assert data.startswith(f"z.py,{hash_bytes(b'z')},1\n".encode())
    assert parse_record(data, wheel=WHEEL) == entries


def test_serialise_record_empty() -> None:
    assert serialise_record([]) == b""
