"""Hostile and malformed wheels through the CLI, and sources that are not plain UTF-8 Python 3.

Every bad wheel must give exit status 2 and one line ``wheelshade: error: ...`` naming the
wheel and the offending entry, write nothing and leave the input as it was.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import os
import re
import stat
import struct
import subprocess
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import validate_record, wheelshade
from wheelshade import RewriteError, shade
from wheelshade.errors import ArchiveError, UsageError, WheelFormatError
from wheelshade.wheel.archive import DEFAULT_LIMITS, WheelReader
from wheelshade.wheel.records import RecordEntry, parse_record, serialise_record

DIST = "demo-1.0.dist-info"
FILENAME = "demo-1.0-py3-none-any.whl"
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
BASE: dict[str, bytes] = {
    "demo/__init__.py": b"from demo import sub\n",
    "demo/sub.py": b"import demo\nX = 1\n",
    f"{DIST}/METADATA": METADATA,
    f"{DIST}/WHEEL": WHEEL,
}
Entry = tuple[str | zipfile.ZipInfo, bytes]


# -- building wheels by hand -----------------------------------------------------------------


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def record_for(entries: Iterable[Entry], dist_info: str = DIST) -> bytes:
    """A RECORD listing every file entry with its real hash, then RECORD itself."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for name, data in entries:
        path = name.orig_filename if isinstance(name, zipfile.ZipInfo) else name
        if not path.endswith("/"):
            writer.writerow([path, record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    return out.getvalue().encode()


@dataclass
class Wheel:
    """A wheel to write: entries, RECORD (computed unless given) and byte-level edits."""

    files: Mapping[str, bytes] = field(default_factory=lambda: dict(BASE))
    extra: list[Entry] = field(default_factory=list)
    record: bytes | None = None
    record_extra: bytes = b""
    dist_info: str = DIST
    compression: int = zipfile.ZIP_DEFLATED
    zip64: bool = False

    def write(self, path: Path) -> Path:
        entries: list[Entry] = [*self.files.items(), *self.extra]
        record = record_for(entries, self.dist_info) if self.record is None else self.record
        entries.append((f"{self.dist_info}/RECORD", record + self.record_extra))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicates are written on purpose
            with zipfile.ZipFile(path, "w", self.compression, allowZip64=True) as zf:
                for name, data in entries:
                    if self.zip64:
                        info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
                        info.compress_type = self.compression
                        with zf.open(info, "w", force_zip64=True) as dest:
                            dest.write(data)
                    else:
                        zf.writestr(name, data)
        if self.zip64:
            add_zip64_end_record(path)
        return path


def zipinfo(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    return info


def central_header(data: bytes, name: bytes) -> int:
    """Offset of ``name``'s central directory header."""
    at = data.find(b"PK\x01\x02")
    while data[at + 46 : at + 46 + struct.unpack_from("<H", data, at + 28)[0]] != name:
        at = data.find(b"PK\x01\x02", at + 1)
        assert at >= 0, name
    return at


def patch_central(path: Path, name: bytes, offset: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, central_header(data, name) + offset, value)
    path.write_bytes(data)


def replace_bytes(path: Path, old: bytes, new: bytes, count: int = -1) -> None:
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new, count))


def add_zip64_end_record(path: Path, entries: int | None = None) -> None:
    """Give an archive a ZIP64 end of central directory record (and locator), as big ones have.

    ``entries`` overrides the entry count it declares.
    """
    data = path.read_bytes()
    assert data[-22:-18] == b"PK\x05\x06"
    total, size, offset = struct.unpack("<4s4H2LH", data[-22:])[4:7]
    count = total if entries is None else entries
    at = len(data) - 22
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(data[:at] + record + locator + end)


# -- running the CLI -------------------------------------------------------------------------


run_cli = wheelshade


def shade_cli(
    wheel: Path, out: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("shade", "--dep", wheel, "-o", out, "--cache-dir", out.parent / "cache", env=env)


def assert_refused(proc: subprocess.CompletedProcess[str], wheel: Path, pattern: str) -> str:
    """Exit 2, one ``wheelshade: error:`` line naming the wheel and matching ``pattern``."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("wheelshade: error: "), line
    assert str(wheel) in line, line
    assert re.search(pattern, line), line
    return line


# -- hostile archives ------------------------------------------------------------------------


def _base(**changes: object) -> Callable[[Path], Path]:
    return lambda path: Wheel(**changes).write(path)  # type: ignore[arg-type]


def _with(*extra: Entry) -> Callable[[Path], Path]:
    return _base(extra=list(extra))


def _files(**changes: bytes) -> dict[str, bytes]:
    """BASE with its ``metadata`` or ``wheel`` file replaced."""
    files = dict(BASE)
    for key, data in changes.items():
        files[{"metadata": f"{DIST}/METADATA", "wheel": f"{DIST}/WHEEL"}[key]] = data
    return files


def _nul_name(path: Path) -> Path:
    Wheel(extra=[("demo/evilX.py", b"x = 1\n")]).write(path)
    replace_bytes(path, b"demo/evilX.py", b"demo/evil\x00.py")
    return path


def _central_field(
    name: str, offset: int, fmt: str, value: int, **kw: object
) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        Wheel(**kw).write(path)  # type: ignore[arg-type]
        patch_central(path, name.encode(), offset, fmt, value)
        return path

    return build


def _forged_total(path: Path) -> Path:
    """Two stored entries whose central directory claims about 4 GiB each."""
    Wheel(extra=[("demo/a.bin", b"a"), ("demo/b.bin", b"b")], compression=zipfile.ZIP_STORED).write(
        path
    )
    for name in (b"demo/a.bin", b"demo/b.bin"):
        patch_central(path, name, 24, "<L", 0xFFFFFFF0)
    return path


def _declares_many(path: Path) -> Path:
    Wheel().write(path)
    add_zip64_end_record(path, entries=10**9)
    return path


def _corrupt_data(path: Path) -> Path:
    files = {**BASE, "demo/data.txt": b"A" * 100}
    Wheel(files=files, compression=zipfile.ZIP_STORED).write(path)
    replace_bytes(path, b"A" * 100, b"B" * 100)
    return path


def _local_name_differs(path: Path) -> Path:
    Wheel().write(path)
    replace_bytes(path, b"demo/sub.py", b"demo/sUb.py", count=1)  # the local header comes first
    return path


def _local_name_not_utf8(path: Path) -> Path:
    """The central directory says UTF-8 (and is); the local header's name is not."""
    Wheel(extra=[("demo/\u00e9.py", b"")]).write(path)
    replace_bytes(path, "demo/\u00e9.py".encode(), b"demo/\xff\xfe.py", count=1)
    return path


def _no_record(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in BASE.items():
            zf.writestr(name, data)
    return path


def _no_dist_info(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/__init__.py", b"")
        zf.writestr("demo.dist-info", b"")  # a file, not a directory
    return path


def _without(name: str) -> Callable[[Path], Path]:
    files = {k: v for k, v in BASE.items() if k != name}
    return _base(files=files)


def _renamed_dist_info(dist_info: str, metadata: bytes = METADATA) -> Callable[[Path], Path]:
    files = {k.replace(DIST, dist_info): v for k, v in BASE.items()}
    files[f"{dist_info}/METADATA"] = metadata
    return _base(files=files, dist_info=dist_info)


def _big_record_size(path: Path) -> Path:
    record = record_for(BASE.items())
    digest = record_hash(BASE["demo/sub.py"]).encode()
    size = str(len(BASE["demo/sub.py"])).encode()
    record = record.replace(digest + b"," + size, digest + b"," + b"1" * 5000)
    return Wheel(record=record).write(path)


LINK = zipinfo("demo/link.py", stat.S_IFLNK | 0o777)
DEVICE = zipinfo("demo/dev.py", stat.S_IFCHR | 0o644)
CAFE_NFC, CAFE_NFD = "demo/caf\u00e9.py", "demo/cafe\u0301.py"
ENTRY_POINTS = f"{DIST}/entry_points.txt"

#: id -> (builder, pattern the error line must match, environment)
CASES: dict[str, tuple[Callable[[Path], Path], str, dict[str, str]]] = {
    # unsafe names
    "dotdot": (
        _with(("../evil.py", b"")),
        r"unsafe entry name \.\./evil\.py: contains a '\.\.' component",
        {},
    ),
    "dotdot-inner": (
        _with(("demo/../../evil.py", b"")),
        r"unsafe entry name demo/\.\./\.\./evil\.py: contains a '\.\.' component",
        {},
    ),
    "absolute": (_with(("/tmp/evil.py", b"")), r"unsafe entry name /tmp/evil\.py: is absolute", {}),
    "drive-backslash": (_with(("C:\\x", b"")), r"unsafe entry name C:\\x: is absolute", {}),
    "drive-slash": (_with(("C:/x.py", b"")), r"unsafe entry name C:/x\.py: is absolute", {}),
    "backslash": (
        _with(("demo\\..\\..\\evil.py", b"")),
        r"unsafe entry name demo\\\.\.\\\.\.\\evil\.py: contains a backslash",
        {},
    ),
    "nul": (_nul_name, r"unsafe entry name 'demo/evil\\x00\.py': contains a NUL byte", {}),
    "newline": (
        _with(("demo/evil\n.py", b"")),
        r"unsafe entry name 'demo/evil\\n\.py': contains a control character",
        {},
    ),
    "terminal-escape": (
        _with(("demo/\x1b[2Jevil.py", b"")),
        r"unsafe entry name 'demo/\\x1b\[2Jevil\.py': contains a control character",
        {},
    ),
    # special files
    "symlink": (_with((LINK, b"../../etc/passwd")), r"entry demo/link\.py is a symbolic link", {}),
    "device": (
        _with((DEVICE, b"")),
        r"entry demo/dev\.py is not a regular file \(mode 0o20000\)",
        {},
    ),
    # duplicates
    "duplicate": (_with(("demo/sub.py", b"X = 2\n")), r"duplicate entry demo/sub\.py$", {}),
    "duplicate-case": (
        _with(("demo/SUB.py", b"")),
        r"duplicate entry demo/SUB\.py \(same as demo/sub\.py ignoring case and Unicode form\)",
        {},
    ),
    "duplicate-casefold": (
        _with(("demo/straße.py", b""), ("demo/STRASSE.py", b"")),
        r"duplicate entry demo/STRASSE\.py \(same as demo/straße\.py ignoring case",
        {},
    ),
    "duplicate-nfc": (
        _with((CAFE_NFC, b""), (CAFE_NFD, b"")),
        r"duplicate entry 'demo/cafe\\u0301\.py' \(same as 'demo/caf\\xe9\.py' ignoring case "
        r"and Unicode form\)",
        {},
    ),
    "file-and-directory": (
        _with(("demo/sub.py/x.py", b"")),
        r"entry demo/sub\.py is a file but demo/sub\.py/x\.py is inside it",
        {},
    ),
    # zip bombs
    "bomb-ratio": (
        _with(("demo/bomb.bin", bytes(8 << 20))),
        r"entry demo/bomb\.bin expands \d+:1, above the limit of 200:1 \(possible zip bomb\)",
        {},
    ),
    "bomb-ratio-env": (
        _with(("demo/big.bin", bytes(range(256)) * 4096)),
        r"entry demo/big\.bin expands \d+:1, above the limit of 2:1",
        {"WHEELSHADE_MAX_RATIO": "2"},
    ),
    "bomb-total": (_forged_total, r"expands to \d+ bytes, above the limit of 4294967296$", {}),
    "bomb-total-env": (
        _with(("demo/data.txt", b"x" * 2000)),
        r"expands to \d+ bytes, above the limit of 1000$",
        {"WHEELSHADE_MAX_TOTAL_SIZE": "1000"},
    ),
    "members-declared": (_declares_many, r"has 1000000000 entries, above the limit of 200000$", {}),
    "members-env": (
        _with(("demo/a.py", b"")),
        r"has 6 entries, above the limit of 5$",
        {"WHEELSHADE_MAX_MEMBERS": "5"},
    ),
    # flags, compression, corrupt data
    "encrypted": (
        _central_field("demo/sub.py", 8, "<H", 0x1),
        r"entry demo/sub\.py is encrypted",
        {},
    ),
    "strong-encryption": (
        _central_field("demo/sub.py", 8, "<H", 0x41),
        r"entry demo/sub\.py is encrypted",
        {},
    ),
    "patched-data": (
        _central_field("demo/sub.py", 8, "<H", 0x20),
        r"entry demo/sub\.py uses unsupported compressed patch data",
        {},
    ),
    "zip-version": (  # found by fuzzing: zipfile raised NotImplementedError
        _central_field("demo/sub.py", 6, "<H", 127),
        r"uses an unsupported zip feature \(zip file version 12\.7\)",
        {},
    ),
    "compression": (
        _central_field("demo/sub.py", 10, "<H", 9),
        r"entry demo/sub\.py uses unsupported compression 9",
        {},
    ),
    "corrupt-data": (_corrupt_data, r"entry demo/data\.txt is corrupt \(Bad CRC-32", {}),
    "local-header-name": (
        _local_name_differs,
        r"entry demo/sub\.py is corrupt \(File name in directory 'demo/sub\.py' and header "
        r"b'demo/sUb\.py' differ",
        {},
    ),
    "local-header-not-utf8": (  # zipfile raised UnicodeDecodeError
        _local_name_not_utf8,
        r"entry demo/\u00e9\.py is corrupt \('utf-8' codec can't decode byte 0xff",
        {},
    ),
    # RECORD
    "record-dotdot": (
        _base(record_extra=b"../x,,\n"),
        r"RECORD lists an unsafe path \.\./x: contains a '\.\.' component",
        {},
    ),
    "record-absolute": (
        _base(record_extra=b"/etc/passwd,,\n"),
        r"RECORD lists an unsafe path /etc/passwd: is absolute",
        {},
    ),
    "record-not-utf8": (
        _base(record_extra=b"caf\xe9.py,,\n"),
        r"RECORD is not valid UTF-8 \(byte 0xe9 at offset \d+\)",
        {},
    ),
    "record-missing": (_no_record, r"demo-1\.0\.dist-info/RECORD is missing", {}),
    "record-huge-size": (
        _big_record_size,
        r"RECORD line 2 \(demo/sub\.py\): size 1+\.\.\. is too large",
        {},
    ),
    # dist-info and metadata
    "dist-info-name": (
        _renamed_dist_info("other-1.0.dist-info", METADATA.replace(b"demo", b"other")),
        r"names disagree: file name says 'demo', other-1\.0\.dist-info and METADATA say 'other'",
        {},
    ),
    "metadata-name": (
        _base(files=_files(metadata=METADATA.replace(b"Name: demo", b"Name: other"))),
        r"names disagree: file name says 'demo', .* and METADATA say 'demo' and 'other'",
        {},
    ),
    "metadata-version": (
        _base(files=_files(metadata=METADATA.replace(b"Version: 1.0", b"Version: 2.0"))),
        r"file name says version 1\.0, METADATA says 2\.0",
        {},
    ),
    "two-dist-infos": (
        _with(("other-1.0.dist-info/METADATA", METADATA.replace(b"demo", b"other"))),
        r"more than one \.dist-info directory: demo-1\.0\.dist-info, other-1\.0\.dist-info",
        {},
    ),
    "no-dist-info": (_no_dist_info, r"no top-level \.dist-info directory", {}),
    "metadata-missing": (
        _without(f"{DIST}/METADATA"),
        r"demo-1\.0\.dist-info/METADATA is missing",
        {},
    ),
    "metadata-not-utf8": (
        _base(files=_files(metadata=METADATA + b"Summary: caf\xe9\n")),
        r"demo-1\.0\.dist-info/METADATA: METADATA is not UTF-8",
        {},
    ),
    "metadata-bad-requirement": (
        _base(files=_files(metadata=METADATA + b"Requires-Dist: foo bar baz\n")),
        r"invalid Requires-Dist 'foo bar baz' \(Expected .*\)$",
        {},
    ),
    "entry-points-not-ini": (
        _base(files={**BASE, ENTRY_POINTS: b"[console_scripts\nx = demo:main\n"}),
        r"entry_points\.txt: entry_points\.txt is not a valid INI file",
        {},
    ),
}


WHEEL_CASES = {
    "wheel-version-2": (
        _base(files=_files(wheel=WHEEL.replace(b"1.0", b"2.0"))),
        r"demo-1\.0\.dist-info/WHEEL has Wheel-Version 2\.0; only 1\.x can be read",
    ),
    "wheel-missing": (_without(f"{DIST}/WHEEL"), r"demo-1\.0\.dist-info/WHEEL is missing"),
    "wheel-no-version": (
        _base(files=_files(wheel=b"Generator: tests\nTag: py3-none-any\n")),
        r"demo-1\.0\.dist-info/WHEEL has no Wheel-Version",
    ),
    "wheel-bad-version": (
        _base(files=_files(wheel=WHEEL.replace(b"1.0", b"1.x"))),
        r"demo-1\.0\.dist-info/WHEEL has an invalid Wheel-Version '1\.x'",
    ),
    "wheel-huge-version": (  # found by fuzzing: int() refused 5000 digits with ValueError
        _base(files=_files(wheel=WHEEL.replace(b"1.0", b"9" * 5000))),
        r"demo-1\.0\.dist-info/WHEEL has an invalid Wheel-Version '9{37}'\.\.\.$",
    ),
    "wheel-not-utf8": (
        _base(files=_files(wheel=WHEEL + b"Generator: caf\xe9\n")),
        r"demo-1\.0\.dist-info/WHEEL is not valid UTF-8",
    ),
}


@pytest.mark.parametrize("case", list(WHEEL_CASES))
def test_bad_wheel_file_is_refused_by_the_reader(case: str, tmp_path: Path) -> None:
    build, pattern = WHEEL_CASES[case]
    wheel = build(tmp_path / FILENAME)
    with WheelReader(wheel) as reader, pytest.raises(WheelFormatError, match=pattern) as info:
        reader.check_wheel_version()
    assert info.value.path == str(wheel)


def _python2_source(path: Path) -> Path:
    return raw_wheel(path.parent, {"demo/mod.py": b'import demo\nprint "x"\n'})


CLI_CASES = {
    **CASES,
    **{case: (build, pattern, {}) for case, (build, pattern) in WHEEL_CASES.items()},
    "dist-info-version": (
        _renamed_dist_info("demo-2.0.dist-info"),
        r"demo-2\.0\.dist-info says version '2\.0', the file name 1\.0",
        {},
    ),
    "python2-source": (_python2_source, r"demo/mod\.py:2: cannot parse as Python 3 source", {}),
}


@dataclass(frozen=True)
class Run:
    wheel: Path
    before: bytes
    out: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every CLI case, each in its own interpreter, run a few at a time to save wall time."""
    root = tmp_path_factory.mktemp("hostile")

    # Built here, one after another: warnings.catch_warnings (around the on-purpose duplicate
    # names) changes process-wide filters, so building in the threads raced.
    wheels: dict[str, Path] = {}
    for case, (build, _, _) in CLI_CASES.items():
        (root / case).mkdir()
        wheels[case] = build(root / case / FILENAME)

    def run(case: str) -> Run:
        env = CLI_CASES[case][2]
        wheel, folder = wheels[case], root / case
        before = wheel.read_bytes()
        return Run(wheel, before, folder / "out", shade_cli(wheel, folder / "out", env))

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        return dict(zip(CLI_CASES, pool.map(run, CLI_CASES), strict=True))


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_hostile_wheel_is_refused(case: str, cli_runs: dict[str, Run]) -> None:
    run = cli_runs[case]
    assert_refused(run.proc, run.wheel, CLI_CASES[case][1])
    assert not run.out.exists()
    assert run.wheel.read_bytes() == run.before


@pytest.mark.parametrize(("version", "expected"), [("1.0", (1, 0)), ("1.9", (1, 9)), ("1", (1,))])
def test_newer_minor_wheel_version_is_read(
    version: str, expected: tuple[int, ...], tmp_path: Path
) -> None:
    wheel = Wheel(files=_files(wheel=WHEEL.replace(b"1.0", version.encode()))).write(
        tmp_path / FILENAME
    )
    with WheelReader(wheel) as reader:
        assert reader.check_wheel_version() == expected
    proc = shade_cli(wheel, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    (output,) = (tmp_path / "out").glob("*.whl")
    validate_record(output)


def shaded_members(wheel: Path) -> dict[str, bytes]:
    """A shaded wheel's members, except those that depend on the input's bytes."""
    with zipfile.ZipFile(wheel) as zf:
        return {
            name: zf.read(name)
            for name in zf.namelist()
            if not name.endswith(("/RECORD", "/wheelshade.json"))
        }


def test_zip64_wheel_is_shaded(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "zip64").mkdir()
    plain = Wheel().write(tmp_path / "plain" / FILENAME)
    big = Wheel(zip64=True).write(tmp_path / "zip64" / FILENAME)
    data = big.read_bytes()
    assert b"PK\x06\x06" in data and b"\x01\x00\x10\x00" in data  # ZIP64 end record and extras
    outputs = []
    for wheel in (plain, big):
        out = wheel.parent / "out"
        proc = shade_cli(wheel, out)
        assert proc.returncode == 0, proc.stderr
        (output,) = out.glob("*.whl")
        validate_record(output)
        outputs.append(shaded_members(output))
    assert outputs[0] == outputs[1]


def test_raising_a_limit_lets_a_big_wheel_through(tmp_path: Path) -> None:
    wheel = _with(("demo/zeros.bin", bytes(8 << 20)))(tmp_path / FILENAME)
    assert shade_cli(wheel, tmp_path / "refused").returncode == 2
    proc = shade_cli(wheel, tmp_path / "out", {"WHEELSHADE_MAX_RATIO": "100000"})
    assert proc.returncode == 0, proc.stderr
    (output,) = (tmp_path / "out").glob("*.whl")
    validate_record(output)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e9", "\uff11\uff10"])
def test_bad_limit_variable_is_a_usage_error(value: str, tmp_path: Path) -> None:
    wheel = Wheel().write(tmp_path / FILENAME)
    proc = shade_cli(wheel, tmp_path / "out", {"WHEELSHADE_MAX_RATIO": value})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        f"wheelshade: error: WHEELSHADE_MAX_RATIO must be a positive whole number, got {value!r}\n"
    )
    assert not (tmp_path / "out").exists()


def test_limits_come_from_arguments_then_environment_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _with(("demo/data.txt", b"x" * 2000))(tmp_path / FILENAME)
    with WheelReader(wheel):
        pass
    monkeypatch.setenv("WHEELSHADE_MAX_TOTAL_SIZE", "1000")
    with pytest.raises(ArchiveError, match=r"above the limit of 1000$"):
        WheelReader(wheel)
    with WheelReader(wheel, max_total_size=DEFAULT_LIMITS["max_total_size"]):
        pass
    monkeypatch.setenv("WHEELSHADE_MAX_TOTAL_SIZE", "9" * 5000)  # more digits than int() takes
    with WheelReader(wheel):
        pass
    monkeypatch.setenv("WHEELSHADE_MAX_TOTAL_SIZE", "x")
    with pytest.raises(UsageError):
        WheelReader(wheel)


# -- sources that are not plain UTF-8 Python 3 -----------------------------------------------


def raw_wheel(out_dir: Path, files: Mapping[str, bytes]) -> Path:
    """The ``demo`` dep wheel holding ``files`` as raw bytes (make_wheel takes text only)."""
    from wheel.wheelfile import WheelFile

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILENAME
    with WheelFile(path, "w") as wf:
        for name, data in {"demo/__init__.py": b"", **files}.items():
            wf.writestr(name, data)
        wf.writestr(f"{DIST}/METADATA", METADATA)
        wf.writestr(f"{DIST}/WHEEL", WHEEL)
    return path


def shade_source(tmp_path: Path, source: bytes) -> tuple[bytes, str]:
    """Shade a dep whose ``demo/mod.py`` is ``source``; return the new bytes and shaded name."""
    wheel = raw_wheel(tmp_path / "in", {"demo/mod.py": source})
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    validate_record(report.output)
    shaded = report.mapping["demo"]
    with zipfile.ZipFile(report.output) as zf:
        return zf.read(f"{shaded}/mod.py"), shaded


LATIN1 = b"# -*- coding: latin-1 -*-\n"
#: id -> (source, expected output with S for the shaded name)
ENCODINGS = {
    "latin1-unchanged": (
        LATIN1 + b"# mentions demo, imports nothing\ns = '\xe9t\xe9'\n",
        LATIN1 + b"# mentions demo, imports nothing\ns = '\xe9t\xe9'\n",
    ),
    "latin1": (
        LATIN1 + b"import demo\ns = '\xe9t\xe9'\n",
        LATIN1 + b"import S as demo\ns = '\xe9t\xe9'\n",
    ),
    "cp1252-vim": (
        b"# vim: set fileencoding=cp1252 :\nimport demo.mod\ns = '\x80'\n",
        b"# vim: set fileencoding=cp1252 :\nimport S.mod, S as demo\ns = '\x80'\n",
    ),
    "bom": (
        b"\xef\xbb\xbfimport demo\ns = 'caf\xc3\xa9'\n",
        b"\xef\xbb\xbfimport S as demo\ns = 'caf\xc3\xa9'\n",
    ),
    "crlf": (
        b"import demo\r\nfrom demo import mod\r\nx = 1\r\n",
        b"import S as demo\r\nfrom S import mod\r\nx = 1\r\n",
    ),
    "mixed-line-endings": (
        b"import demo\r\nimport os\nfrom demo.mod import x\r\ny = 2\n",
        b"import S as demo\r\nimport os\nfrom S.mod import x\r\ny = 2\n",
    ),
    "tabs": (
        b"if True:\n\timport demo\n\tfrom demo import mod\n\ty = 1\n",
        b"if True:\n\timport S as demo\n\tfrom S import mod\n\ty = 1\n",
    ),
    "no-final-newline": (b"import demo", b"import S as demo"),
    "backslash-continuation": (b"import os, \\\n    demo\n", b"import os, \\\n    S as demo\n"),
}


@pytest.mark.parametrize("case", list(ENCODINGS))
def test_source_encoding_round_trips(case: str, tmp_path: Path) -> None:
    source, expected = ENCODINGS[case]
    new, shaded = shade_source(tmp_path, source)
    assert new == expected.replace(b"S", shaded.encode())
    ast.parse(new)  # still valid Python, decoded by its own declaration


def test_latin1_string_keeps_its_value(tmp_path: Path) -> None:
    new, _ = shade_source(tmp_path, LATIN1 + b"import demo\ns = '\xe9t\xe9'\n")
    (assign,) = [node for node in ast.parse(new).body if isinstance(node, ast.Assign)]
    assert ast.literal_eval(assign.value) == "\u00e9t\u00e9"


# LibCST does not round-trip these byte for byte (it moved form feeds and lost CR-only line
# ends, writing invalid code); the rewrite must then refuse rather than write its output.
LIBCST_LOSSY = {
    "form-feeds": (
        b"\x0cimport demo\n\x0c\ndef f():\n\x0c    import demo.mod\n    return demo\n",
        b"\x0cimport S as demo\n\x0c\ndef f():\n\x0c    import S.mod, S as demo\n    return demo\n",
    ),
    "cr-line-endings": (b"import demo\rx = 1\r", b"import S as demo\rx = 1\r"),
}


@pytest.mark.parametrize("case", list(LIBCST_LOSSY))
def test_lossy_round_trip_is_exact_or_refused(case: str, tmp_path: Path) -> None:
    source, expected = LIBCST_LOSSY[case]
    try:
        new, shaded = shade_source(tmp_path, source)
    except RewriteError as exc:  # refusing is acceptable; writing different code is not
        assert "demo/mod.py" in str(exc) and "\n" not in str(exc)
        return
    assert new == expected.replace(b"S", shaded.encode())


#: id -> (source, pattern of the one-line error, after the file name)
UNPARSABLE = {
    "python2": (
        b'import demo\nprint "x"\n',
        r":2: cannot parse as Python 3 source: invalid syntax near 'print \"x\"'",
    ),
    "no-coding-declaration": (
        b"import demo\ns = '\xe9'\n",
        r": cannot parse as Python 3 source: 'utf-8' codec can't decode byte 0xe9",
    ),
    "unknown-coding": (
        b"# coding: nosuch\nimport demo\n",
        r": cannot parse as Python 3 source: unknown encoding: nosuch",
    ),
    "bom-and-latin1": (
        b"\xef\xbb\xbf# coding: latin-1\nimport demo\n",
        r": cannot parse as Python 3 source: encoding problem",
    ),
    "nul-byte": (b"import demo\n\x00\n", r": cannot parse as Python 3 source"),
}


@pytest.mark.parametrize("case", list(UNPARSABLE))
def test_unparsable_source_fails_with_one_line(case: str, tmp_path: Path) -> None:
    source, pattern = UNPARSABLE[case]
    wheel = raw_wheel(tmp_path / "in", {"demo/mod.py": source})
    with pytest.raises(RewriteError) as info:
        shade([], [wheel], out_dir=tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message
    assert re.match(re.escape(f"{wheel}/demo/mod.py") + pattern, message), message
    assert not (tmp_path / "out").exists()


# -- found by fuzzing (tests/fuzz) -----------------------------------------------------------
# The archive crashes are CLI cases above: "zip-version", "local-header-not-utf8",
# "wheel-huge-version", "record-huge-size", "metadata-bad-requirement".


@pytest.mark.parametrize("path", ["demo/a\rb.py", "\r", "demo/a\nb.py", 'demo/"a",b.py'])
def test_record_paths_with_line_ends_read_back(path: str) -> None:
    entries = [RecordEntry(path, record_hash(b""), 0), RecordEntry(f"{DIST}/RECORD", None, None)]
    assert parse_record(serialise_record(entries), wheel=FILENAME) == entries


ENTRY_POINTS_TXT = (
    b"[DEFAULT]\nhidden = demo:main\n\n"
    b"[demo.plugins]\nplugin = demo.sub:hook\n\n"
    b"[other]\nx = demo.sub:f\n    [extra]\n"
)


def test_entry_points_default_group_and_continued_values(tmp_path: Path) -> None:
    wheel = raw_wheel(tmp_path / "in", {ENTRY_POINTS: ENTRY_POINTS_TXT, "demo/sub.py": b""})
    (report,) = shade([], [wheel], out_dir=tmp_path / "out").wheels
    shaded = report.mapping["demo"]
    with zipfile.ZipFile(report.output) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(name).decode()
    # [DEFAULT] stays its own group: its entry is not copied into every other group.
    assert text == (
        f"[DEFAULT]\nhidden = {shaded}:main\n\n"
        f"[demo.plugins]\nplugin = {shaded}.sub:hook\n\n"
        f"[other]\nx = {shaded}.sub:f\n    [extra]\n\n"
    )
