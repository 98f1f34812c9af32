"""Tests for wheel zip I/O: the validating reader, RECORD verification and the writer."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import stat
import struct
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from installer.sources import WheelFile

from wheelshade.errors import ArchiveError, UsageError, WheelFormatError
from wheelshade.wheel import writer as writer_module
from wheelshade.wheel.archive import Member, WheelReader
from wheelshade.wheel.writer import WheelWriter, wheel_order, zip_timestamp

DIST = "demo-1.0.dist-info"
FILES: dict[str, bytes] = {
    "demo/__init__.py": b"from demo.app import run\n",
    "demo/app.py": b"def run() -> None:\n    print('hello')\n",
    "demo/data/table.csv": b"a,b\n1,2\n" * 50,
    f"{DIST}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
Entry = tuple[str | zipfile.ZipInfo, bytes]


# -- helpers ---------------------------------------------------------------------------------


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def record_rows(files: Mapping[str, bytes]) -> str:
    rows = [f"{name},{record_hash(data)},{len(data)}" for name, data in files.items()]
    return "\n".join([*rows, f"{DIST}/RECORD,,"]) + "\n"


def write_zip(path: Path, entries: Iterable[Entry]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates some tests want
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def make_wheel(
    tmp_path: Path,
    files: Mapping[str, bytes] = FILES,
    *,
    record: str | bytes | None = None,
    extra: Iterable[Entry] = (),
    name: str = "demo-1.0-py3-none-any.whl",
) -> Path:
    """A wheel holding ``files`` and a RECORD computed from them (or the ``record`` given)."""
    record = record_rows(files) if record is None else record
    data = record.encode() if isinstance(record, str) else record
    entries: list[Entry] = [*files.items(), *extra, (f"{DIST}/RECORD", data)]
    return write_zip(tmp_path / name, entries)


def error(path: Path, message: str) -> str:
    return rf"^{re.escape(str(path))}: {message}$"


def info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
    entry.external_attr = mode << 16
    return entry


def patch_central(path: Path, name: bytes, offset: int, value: int) -> None:
    """Overwrite a 2-byte field of ``name``'s central directory header."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while data[at + 46 : at + 46 + struct.unpack_from("<H", data, at + 28)[0]] != name:
        at = data.find(b"PK\x01\x02", at + 1)
        assert at >= 0, name
    struct.pack_into("<H", data, at + offset, value)
    path.write_bytes(data)


def replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new))


# -- reader: good wheels ---------------------------------------------------------------------


def test_reader_lists_file_members_in_archive_order(tmp_path: Path) -> None:
    script = info("demo/tool.sh", 0o100755)
    record = record_rows({**FILES, "demo/tool.sh": b"#!/bin/sh\n"})
    path = make_wheel(tmp_path, record=record, extra=[("demo/", b""), (script, b"#!/bin/sh\n")])
    with WheelReader(path) as reader:
        assert reader.path == path
        assert reader.dist_info == DIST
        assert reader.members == (
            *(Member(name, len(data), False) for name, data in FILES.items()),
            Member("demo/tool.sh", 10, True),
            Member(f"{DIST}/RECORD", len(record), False),
        )
        assert reader.read("demo/app.py") == FILES["demo/app.py"]
        with reader.open("demo/data/table.csv") as stream:
            chunks = iter(lambda: stream.read(7), b"")
            assert b"".join(chunks) == FILES["demo/data/table.csv"]
        reader.verify_record()
        with pytest.raises(KeyError):
            reader.read("demo/missing.py")


def test_reader_accepts_zip64(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, data in [*FILES.items(), (f"{DIST}/RECORD", record_rows(FILES).encode())]:
            with zf.open(zipfile.ZipInfo(name), "w", force_zip64=True) as dest:
                dest.write(data)
    assert b"\x01\x00\x10\x00" in path.read_bytes()  # the ZIP64 extra field header
    with WheelReader(path) as reader:
        assert reader.read("demo/app.py") == FILES["demo/app.py"]
        reader.verify_record()


def test_reader_accepts_zip64_end_of_central_directory(tmp_path: Path) -> None:
    many = {f"demo/m{i}.py": b"" for i in range(0x10000)}  # past the 16-bit entry count
    path = write_zip(tmp_path / "many.whl", [*many.items(), (f"{DIST}/METADATA", b"")])
    assert b"PK\x06\x06" in path.read_bytes()  # the ZIP64 end of central directory record
    with WheelReader(path) as reader:
        assert len(reader.members) == 0x10001


def test_small_compressible_entries_are_not_bombs(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, {**FILES, "demo/zeros.bin": bytes(500_000)})
    with WheelReader(path) as reader:
        reader.verify_record()


# -- reader: rejections ----------------------------------------------------------------------


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ArchiveError, match=error(path, r"not a valid zip archive \(.+\)")) as info:
        WheelReader(path)
    assert info.value.path == str(path)


def test_truncated_zip(tmp_path: Path) -> None:
    path = make_wheel(tmp_path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ArchiveError, match=error(path, r"not a valid zip archive \(.+\)")):
        WheelReader(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.whl"
    with pytest.raises(ArchiveError, match=error(path, r"cannot read the wheel \(.+\)")):
        WheelReader(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", r"unsafe entry name /etc/passwd: is absolute"),
        ("C:\\x.py", r"unsafe entry name C:\\x\.py: is absolute"),
        ("C:/x.py", r"unsafe entry name C:/x\.py: is absolute"),
        ("c:x.py", r"unsafe entry name c:x\.py: is absolute"),
        ("demo/../../x.py", r"unsafe entry name demo/\.\./\.\./x\.py: contains a '\.\.' component"),
        ("../x/", r"unsafe entry name \.\./x/: contains a '\.\.' component"),
        ("demo\\x.py", r"unsafe entry name demo\\x\.py: contains a backslash"),
        ("", r"unsafe entry name '': is empty after normalisation"),
        ("./", r"unsafe entry name \./: is empty after normalisation"),
        (
            "demo/./x.py",
            r"unsafe entry name demo/\./x\.py: is not normalised \(should be demo/x\.py\)",
        ),
        (
            "demo//x.py",
            r"unsafe entry name demo//x\.py: is not normalised \(should be demo/x\.py\)",
        ),
    ],
)
def test_unsafe_names(tmp_path: Path, name: str, message: str) -> None:
    path = make_wheel(tmp_path, extra=[(zipfile.ZipInfo(name), b"x")])
    with pytest.raises(ArchiveError, match=error(path, message)):
        WheelReader(path)


def test_nul_byte_in_name(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, extra=[("demo/aXb.py", b"x")])
    replace_bytes(path, b"demo/aXb.py", b"demo/a\x00b.py")
    with pytest.raises(
        ArchiveError,
        match=error(path, r"unsafe entry name 'demo/a\\x00b\.py': contains a NUL byte"),
    ):
        WheelReader(path)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (stat.S_IFLNK | 0o777, r"entry demo/link\.py is a symbolic link"),
        (stat.S_IFIFO | 0o644, r"entry demo/link\.py is not a regular file \(mode 0o10000\)"),
    ],
)
def test_special_files(tmp_path: Path, mode: int, message: str) -> None:
    path = make_wheel(tmp_path, extra=[(info("demo/link.py", mode), b"../../etc/passwd")])
    with pytest.raises(ArchiveError, match=error(path, message)):
        WheelReader(path)


def test_encrypted_entry(tmp_path: Path) -> None:
    path = make_wheel(tmp_path)
    patch_central(path, b"demo/app.py", 8, 0x1)
    with pytest.raises(ArchiveError, match=error(path, r"entry demo/app\.py is encrypted")):
        WheelReader(path)


def test_unsupported_compression(tmp_path: Path) -> None:
    path = make_wheel(tmp_path)
    patch_central(path, b"demo/app.py", 10, 9)  # deflate64, which zipfile cannot read
    with pytest.raises(
        ArchiveError, match=error(path, r"entry demo/app\.py uses unsupported compression 9")
    ):
        WheelReader(path)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("demo/x.py", "demo/x.py", r"duplicate entry demo/x\.py"),
        ("x", "x", r"duplicate entry x"),  # one-character strings are shared objects
        (
            "demo/x.py",
            "demo/X.py",
            r"duplicate entry demo/X\.py \(same as demo/x\.py ignoring case and Unicode form\)",
        ),
        (
            "demo/x.py",
            "DEMO/X.PY/",
            r"duplicate entry DEMO/X\.PY/ \(same as demo/x\.py ignoring case and Unicode form\)",
        ),
        (
            "demo/caf\u00e9.py",
            "demo/cafe\u0301.py",
            r"duplicate entry 'demo/cafe\\u0301\.py' \(same as 'demo/caf\\xe9\.py' ignoring case "
            r"and Unicode form\)",
        ),
    ],
)
def test_duplicate_names(tmp_path: Path, first: str, second: str, message: str) -> None:
    path = make_wheel(tmp_path, extra=[(first, b"1"), (second, b"2")])
    with pytest.raises(ArchiveError, match=error(path, message)):
        WheelReader(path)


def test_repeated_directory_entries_are_harmless(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, extra=[("demo/", b""), ("demo/", b"")])
    with WheelReader(path) as reader:
        reader.verify_record()


def test_too_many_members(tmp_path: Path) -> None:
    path = make_wheel(tmp_path)
    with pytest.raises(ArchiveError, match=error(path, r"has 6 entries, above the limit of 5")):
        WheelReader(path, max_members=5)


def test_too_large_in_total(tmp_path: Path) -> None:
    path = make_wheel(tmp_path)
    with pytest.raises(
        ArchiveError, match=error(path, r"expands to \d+ bytes, above the limit of 100")
    ):
        WheelReader(path, max_total_size=100)


def test_zip_bomb(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, {**FILES, "demo/bomb.bin": bytes(4 << 20)})
    message = r"entry demo/bomb\.bin expands \d+:1, above the limit of 200:1 \(possible zip bomb\)"
    with pytest.raises(ArchiveError, match=error(path, message)):
        WheelReader(path)
    with WheelReader(path, max_ratio=10_000) as reader:
        reader.verify_record()


def test_every_unsafe_entry_is_reported(tmp_path: Path) -> None:
    names = ["/a.py", "b/../c.py", "d\\e.py", "/f.py", "/g.py", "/h.py", "/i.py"]
    path = make_wheel(tmp_path, extra=[(zipfile.ZipInfo(name), b"") for name in names])
    message = (
        r"7 unsafe entries: unsafe entry name /a\.py: is absolute; unsafe entry name b/\.\./c\.py: "
        r"contains a '\.\.' component; .*; unsafe entry name /g\.py: is absolute; and 2 more"
    )
    with pytest.raises(ArchiveError, match=error(path, message)):
        WheelReader(path)


def test_no_dist_info(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "x.whl", [("demo/app.py", b""), ("demo.dist-info", b"")])
    with pytest.raises(WheelFormatError, match=error(path, r"no top-level \.dist-info directory")):
        WheelReader(path)


def test_two_dist_infos(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, extra=[("other-2.0.dist-info/METADATA", b"")])
    message = r"more than one \.dist-info directory: demo-1\.0\.dist-info, other-2\.0\.dist-info"
    with pytest.raises(WheelFormatError, match=error(path, message)):
        WheelReader(path)


def test_dist_info_without_version(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "x.whl", [("demo.dist-info/METADATA", b"")])
    message = r"demo\.dist-info is not <name>-<version>\.dist-info"
    with pytest.raises(WheelFormatError, match=error(path, message)):
        WheelReader(path)


def test_corrupt_member_data(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    files = {**FILES, "demo/plain.txt": b"A" * 100}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in [*files.items(), (f"{DIST}/RECORD", record_rows(files).encode())]:
            zf.writestr(name, data)
    replace_bytes(path, b"A" * 100, b"B" * 100)
    message = r"entry demo/plain\.txt is corrupt \(Bad CRC-32 for file 'demo/plain\.txt'\)"
    with WheelReader(path) as reader:
        with pytest.raises(ArchiveError, match=error(path, message)):
            reader.read("demo/plain.txt")
        with pytest.raises(ArchiveError, match=error(path, message)):
            reader.verify_record()


# -- RECORD verification ---------------------------------------------------------------------

HINT = r" \(rebuild the wheel from source\)"
MODIFIED = r": the wheel was modified after it was built; refusing to re-sign it" + HINT


def test_verify_record_accepts_signatures_and_sha512(tmp_path: Path) -> None:
    rows = record_rows(FILES).replace(
        record_hash(FILES["demo/app.py"]),
        "sha512="
        + base64.urlsafe_b64encode(hashlib.sha512(FILES["demo/app.py"]).digest())
        .decode()
        .rstrip("="),
    )
    signature = [(f"{DIST}/RECORD.jws", b"{}")]
    with WheelReader(make_wheel(tmp_path, record=rows, extra=signature)) as reader:
        reader.verify_record()


def test_verify_record_tampered_file(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, {**FILES, "demo/app.py": b"evil()\n"}, record=record_rows(FILES))
    with WheelReader(path) as reader, pytest.raises(WheelFormatError) as info:
        reader.verify_record()
    assert re.match(
        error(path, r"RECORD hash mismatch for demo/app\.py" + MODIFIED), str(info.value)
    )
    assert info.value.path == str(path)


def test_verify_record_size_mismatch(tmp_path: Path) -> None:
    size = len(FILES["demo/app.py"])
    rows = record_rows(FILES).replace(
        f"{record_hash(FILES['demo/app.py'])},{size}",
        f"{record_hash(FILES['demo/app.py'])},{size + 1}",
    )
    path = make_wheel(tmp_path, record=rows)
    message = (
        rf"RECORD size mismatch for demo/app\.py \(RECORD says {size + 1} bytes, "
        rf"the file has {size}\)"
    )
    with (
        WheelReader(path) as reader,
        pytest.raises(WheelFormatError, match=error(path, message + MODIFIED)),
    ):
        reader.verify_record()


def test_verify_record_file_not_listed(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, record=record_rows(FILES), extra=[("demo/extra.py", b"")])
    with (
        WheelReader(path) as reader,
        pytest.raises(
            WheelFormatError,
            match=error(path, r"demo/extra\.py is not listed in RECORD" + MODIFIED),
        ),
    ):
        reader.verify_record()


def test_verify_record_lists_missing_file(tmp_path: Path) -> None:
    files = {**FILES, "demo/gone.py": b"x = 1\n"}
    path = make_wheel(tmp_path, FILES, record=record_rows(files))
    message = r"RECORD lists demo/gone\.py, which is not in the wheel"
    with (
        WheelReader(path) as reader,
        pytest.raises(WheelFormatError, match=error(path, message + MODIFIED)),
    ):
        reader.verify_record()


def test_verify_record_requires_hashes(tmp_path: Path) -> None:
    rows = record_rows(FILES).replace(f"{record_hash(FILES['demo/app.py'])},", ",")
    path = make_wheel(tmp_path, record=rows)
    message = r"RECORD has no hash for demo/app\.py"
    with (
        WheelReader(path) as reader,
        pytest.raises(WheelFormatError, match=error(path, message + MODIFIED)),
    ):
        reader.verify_record()


def test_verify_record_missing_record(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "x.whl", FILES.items())
    message = r"demo-1\.0\.dist-info/RECORD is missing"
    with WheelReader(path) as reader, pytest.raises(WheelFormatError, match=error(path, message)):
        reader.verify_record()


def test_verify_record_not_utf8(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, record=record_rows(FILES).encode() + b"caf\xe9.py,,\n")
    message = r"RECORD is not valid UTF-8 \(byte 0xe9 at offset \d+\)"
    with WheelReader(path) as reader, pytest.raises(WheelFormatError, match=error(path, message)):
        reader.verify_record()


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("../evil.py", r"contains a '\.\.' component"),
        ("demo/../../evil.py", r"contains a '\.\.' component"),
        ("/etc/evil.py", r"is absolute"),
        ("C:/evil.py", r"is absolute"),
    ],
)
def test_verify_record_unsafe_path(tmp_path: Path, bad: str, problem: str) -> None:
    path = make_wheel(tmp_path, record=record_rows(FILES) + f"{bad},,\n")
    message = rf"RECORD lists an unsafe path {re.escape(bad)}: {problem}" + HINT
    with WheelReader(path) as reader, pytest.raises(WheelFormatError, match=error(path, message)):
        reader.verify_record()


def test_verify_record_reports_every_problem(tmp_path: Path) -> None:
    files = {**FILES, "demo/gone.py": b"", "demo/gone2.py": b""}
    actual = {**FILES, "demo/app.py": b"evil()\n", "demo/__init__.py": b"evil()\n"}
    record = record_rows(files) + "../up.py,,\n"
    path = make_wheel(tmp_path, actual, record=record, extra=[("demo/new.py", b"")])
    message = (
        r"6 RECORD problems: RECORD lists an unsafe path \.\./up\.py: contains a '\.\.' component; "
        r"RECORD hash mismatch for demo/__init__\.py; RECORD hash mismatch for demo/app\.py; "
        r"demo/new\.py is not listed in RECORD; RECORD lists demo/gone\.py, which is not in the "
        r"wheel; and 1 more" + MODIFIED
    )
    with WheelReader(path) as reader, pytest.raises(WheelFormatError, match=error(path, message)):
        reader.verify_record()


def test_verify_record_duplicate_rows(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, record=record_rows(FILES) + "demo/app.py,,\n")
    message = r"RECORD lists demo/app\.py more than once" + HINT
    with WheelReader(path) as reader, pytest.raises(WheelFormatError, match=error(path, message)):
        reader.verify_record()


# -- writer ----------------------------------------------------------------------------------


def write_demo(path: Path, date_time: tuple[int, int, int, int, int, int] | None = None) -> Path:
    with WheelWriter(path, DIST, date_time=date_time) as writer:
        writer.add("demo/__init__.py", FILES["demo/__init__.py"])
        writer.add("demo/tool.sh", b"#!/bin/sh\necho hi\n", executable=True)
        writer.add_stream("demo/data/table.csv", io.BytesIO(FILES["demo/data/table.csv"]))
        writer.add_stream("demo/app.py", io.BytesIO(FILES["demo/app.py"]))
        writer.add(f"{DIST}/METADATA", FILES[f"{DIST}/METADATA"])
        writer.add(f"{DIST}/WHEEL", FILES[f"{DIST}/WHEEL"])
    return path


def test_writer_round_trip(tmp_path: Path) -> None:
    path = write_demo(tmp_path / "demo-1.0-py3-none-any.whl", (2021, 6, 7, 8, 9, 10))
    order = ["demo/__init__.py", "demo/tool.sh", "demo/data/table.csv", "demo/app.py"]
    order += [f"{DIST}/METADATA", f"{DIST}/WHEEL", f"{DIST}/RECORD"]
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == order
        for entry in zf.infolist():
            assert entry.compress_type == zipfile.ZIP_DEFLATED
            assert entry.date_time == (2021, 6, 7, 8, 9, 10)
            assert entry.create_system == 3
            mode = 0o100755 if entry.filename == "demo/tool.sh" else 0o100644
            assert entry.external_attr == mode << 16
        rows = list(csv.reader(io.StringIO(zf.read(f"{DIST}/RECORD").decode(), newline="")))
        assert [row[0] for row in rows] == order
        assert rows[-1] == [f"{DIST}/RECORD", "", ""]
        for name, digest, size in rows[:-1]:
            data = zf.read(name)
            assert (digest, size) == (record_hash(data), str(len(data)))
    with WheelReader(path) as reader:
        reader.verify_record()
        assert [m.name for m in reader.members if m.executable] == ["demo/tool.sh"]
    with WheelFile.open(path) as source:
        source.validate_record()


def test_writer_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = write_demo(tmp_path / "a.whl").read_bytes()
    time.sleep(0.01)
    assert write_demo(tmp_path / "b.whl").read_bytes() == first
    with zipfile.ZipFile(tmp_path / "a.whl") as zf:
        assert {entry.date_time for entry in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = write_demo(tmp_path / "c.whl")
    assert later.read_bytes() != first
    with zipfile.ZipFile(later) as zf:
        assert {entry.date_time for entry in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (1980, 1, 1, 0, 0, 0)),
        ("", (1980, 1, 1, 0, 0, 0)),
        ("0", (1980, 1, 1, 0, 0, 0)),
        ("-5", (1980, 1, 1, 0, 0, 0)),
        ("1700000000", (2023, 11, 14, 22, 13, 20)),
        ("99999999999", (2107, 12, 31, 23, 59, 58)),
    ],
)
def test_zip_timestamp(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: tuple[int, ...]
) -> None:
    if value is None:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert zip_timestamp() == expected


def test_zip_timestamp_rejects_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(
        UsageError, match=r"^SOURCE_DATE_EPOCH must be whole seconds, got 'yesterday'$"
    ):
        zip_timestamp()


def test_writer_deletes_partial_file_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with pytest.raises(RuntimeError, match=r"^boom$"), WheelWriter(path, DIST) as writer:
        writer.add("demo/__init__.py", b"")
        assert path.exists()
        raise RuntimeError("boom")
    assert not path.exists()


def test_writer_deletes_partial_file_when_a_stream_fails(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk gone")

    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with pytest.raises(OSError, match=r"^disk gone$"), WheelWriter(path, DIST) as writer:
        writer.add_stream("demo/x.py", Broken())
    assert not path.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"{DIST}/RECORD", r"RECORD is written on close, signatures dropped"),
        (f"{DIST}/RECORD.jws", r"RECORD is written on close, signatures dropped"),
        (f"{DIST}/RECORD.p7s", r"RECORD is written on close, signatures dropped"),
        ("demo/__init__.py", r"is already in the wheel \(names are compared ignoring case\)"),
        ("DEMO/__INIT__.py", r"is already in the wheel \(names are compared ignoring case\)"),
        ("../x.py", r"contains a '\.\.' component"),
        ("/x.py", r"is absolute"),
        ("demo\\x.py", r"contains a backslash"),
        ("demo/", r"is a directory"),
        (
            "other-1.0.dist-info/METADATA",
            r"is in a second \.dist-info directory \(this wheel's is demo-1\.0\.dist-info\)",
        ),
    ],
)
def test_writer_refuses(tmp_path: Path, name: str, message: str) -> None:
    with WheelWriter(tmp_path / "w.whl", DIST) as writer:
        writer.add("demo/__init__.py", b"")
        with pytest.raises(ValueError, match=rf"^cannot add {re.escape(repr(name))}: {message}$"):
            writer.add(name, b"")


def test_writer_refuses_adds_after_close(tmp_path: Path) -> None:
    writer = WheelWriter(tmp_path / "w.whl", DIST)
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match=r"^cannot add 'x\.py': the writer is closed$"):
        writer.add("x.py", b"")


@pytest.mark.parametrize("size", [0, 5, 100, 4096])
def test_add_and_add_stream_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # A tiny threshold exercises the ZIP64 path that real members only take past 16 MiB.
    monkeypatch.setattr(writer_module, "_ZIP64_THRESHOLD", 100)
    monkeypatch.setattr(writer_module, "_CHUNK", 7)
    data = bytes(range(256)) * 16
    data = data[:size]
    with WheelWriter(tmp_path / "a.whl", DIST) as writer:
        writer.add("demo/x.bin", data)
    with WheelWriter(tmp_path / "b.whl", DIST) as writer:
        writer.add_stream("demo/x.bin", io.BytesIO(data))
    assert (tmp_path / "a.whl").read_bytes() == (tmp_path / "b.whl").read_bytes()
    assert (b"\x01\x00\x10\x00" in (tmp_path / "a.whl").read_bytes()) == (size >= 100)
    with WheelReader(tmp_path / "b.whl") as reader:
        assert reader.read("demo/x.bin") == data
        reader.verify_record()


def test_writer_copies_members_from_a_reader(tmp_path: Path) -> None:
    source = make_wheel(tmp_path)
    target = tmp_path / "out" / "demo-1.0-py3-none-any.whl"
    target.parent.mkdir()
    with WheelReader(source) as reader, WheelWriter(target, reader.dist_info) as writer:
        for name in wheel_order((m.name for m in reader.members), reader.dist_info):
            with reader.open(name) as stream:
                writer.add_stream(name, stream)
    with WheelReader(target) as reader:
        reader.verify_record()
        assert [m.name for m in reader.members] == [
            "demo/__init__.py",
            "demo/app.py",
            "demo/data/table.csv",
            f"{DIST}/METADATA",
            f"{DIST}/WHEEL",
            f"{DIST}/RECORD",
        ]
    with WheelFile.open(target) as wheel:
        wheel.validate_record()


def test_wheel_order() -> None:
    names = [
        f"{DIST}/WHEEL",
        f"{DIST}/RECORD",
        "zzz/a.py",
        f"{DIST}/METADATA",
        f"{DIST}/RECORD.jws",
        f"{DIST}/RECORD.p7s",
        "demo-1.0.data/scripts/tool",
        "demo/__init__.py",
        f"{DIST}/licenses/LICENSE",
        "Demo/upper.py",
    ]
    assert wheel_order(names, DIST) == [
        "Demo/upper.py",
        "demo-1.0.data/scripts/tool",
        "demo/__init__.py",
        "zzz/a.py",
        f"{DIST}/METADATA",
        f"{DIST}/WHEEL",
        f"{DIST}/licenses/LICENSE",
    ]
