"""Fuzz the dist-info parsers: RECORD, METADATA and entry_points.txt.

Each must return a value or raise WheelFormatError with a one-line message, whatever the
bytes; where a parser also writes (RECORD, entry points), what it writes must read back the same.
"""

from __future__ import annotations

import configparser

from hypothesis import example, given
from hypothesis import strategies as st

from wheelshade.errors import WheelFormatError
from wheelshade.wheel.metadata import CoreMetadata, edit_entry_points, read_metadata
from wheelshade.wheel.records import RecordEntry, parse_record, serialise_record

WHEEL = "dist/demo-1.0-py3-none-any.whl"
WHERE = f"{WHEEL}/demo-1.0.dist-info/METADATA"

#: Text with the characters that matter to CSV, RFC 822 headers and INI files.
tricky = st.text(alphabet=st.sampled_from(',"\n\r =:[]#;\\\t\x00 a1.-_\u00e9\u2028'), max_size=20)
mixed_text = st.one_of(tricky, st.text(max_size=20))


def to_bytes(parts: list[str], sep: str) -> bytes:
    return sep.join(parts).encode("utf-8", "surrogatepass")


# -- RECORD ----------------------------------------------------------------------------------

hash_text = st.one_of(
    st.just(""),
    st.sampled_from(["sha256", "md5", "sha512", "SHA256", "nosuch"]).flatmap(
        lambda algorithm: st.from_regex(r"[A-Za-z0-9_\-=+/]{0,12}", fullmatch=True).map(
            lambda value: f"{algorithm}={value}"
        )
    ),
    mixed_text,
)
size_text = st.one_of(
    st.just(""),
    st.integers(0, 10**30).map(str),
    st.sampled_from(["-1", "1.5", " 1", "\u0661", "1" * 5000]),
    mixed_text,
)
record_rows = st.lists(
    st.one_of(
        st.tuples(mixed_text, hash_text, size_text).map(list),
        st.lists(mixed_text, max_size=5),
    ),
    max_size=6,
)


@st.composite
def record_bytes(draw: st.DrawFn) -> bytes:
    rows = draw(record_rows)
    quote = draw(st.booleans())
    lines = [",".join(f'"{c}"' if quote else c for c in row) for row in rows]
    return to_bytes(lines, draw(st.sampled_from(["\n", "\r\n", "\r"])))


@given(data=st.one_of(record_bytes(), st.binary(max_size=300)))
@example(data=b"demo/x.py,sha256=abc," + b"1" * 5000 + b"\n")
def test_parse_record_returns_entries_or_wheel_format_error(data: bytes) -> None:
    try:
        entries = parse_record(data, wheel=WHEEL)
    except WheelFormatError as exc:
        assert exc.path == WHEEL
        assert "\n" not in str(exc)
        return
    for entry in entries:
        assert entry.path
        assert entry.size is None or entry.size >= 0


entries = st.lists(
    st.builds(
        RecordEntry,
        st.text(min_size=1, max_size=20).filter(lambda path: "\x00" not in path),
        st.none() | st.from_regex(r"sha256=[A-Za-z0-9_-]{1,43}", fullmatch=True),
        st.none() | st.integers(0, 10**18),
    ),
    max_size=6,
)


@given(entries=entries)
def test_serialised_record_reads_back_the_same(entries: list[RecordEntry]) -> None:
    assert parse_record(serialise_record(entries), wheel=WHEEL) == entries


# -- METADATA --------------------------------------------------------------------------------

requirement_text = st.one_of(
    st.from_regex(
        r"[A-Za-z][A-Za-z0-9._-]{0,8}(\[[a-z, ]{0,8}\])?( ?(==|>=|<|~=|!=)[0-9.*a-z+]{0,6})?"
        r"( ?; ?(python_version|extra|os_name) ?(==|<|in) ?['\"][^'\"]{0,6}['\"])?",
        fullmatch=True,
    ),
    mixed_text,
)
header = st.one_of(
    st.tuples(st.sampled_from(["Name", "name", "NAME"]), mixed_text),
    st.tuples(st.sampled_from(["Version", "version"]), st.one_of(mixed_text, st.just("1.0"))),
    st.tuples(st.just("Requires-Dist"), requirement_text),
    st.tuples(st.sampled_from(["Metadata-Version", "Summary", "Description"]), mixed_text),
    st.tuples(mixed_text, mixed_text),
)


@st.composite
def metadata_bytes(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(header, max_size=8))
    lines = [f"{key}: {value}" for key, value in fields]
    if draw(st.booleans()):
        lines += ["", draw(mixed_text)]
    return to_bytes(lines, draw(st.sampled_from(["\n", "\r\n"])))


@given(data=st.one_of(metadata_bytes(), st.binary(max_size=300)))
@example(data=b"Name: demo\nVersion: 1.0\nRequires-Dist: foo bar baz\n")
def test_read_metadata_returns_metadata_or_wheel_format_error(data: bytes) -> None:
    try:
        result = read_metadata(data, where=WHERE)
    except WheelFormatError as exc:
        assert exc.path == WHERE
        assert "\n" not in str(exc)
        return
    assert isinstance(result, CoreMetadata)
    assert result.name


# -- entry_points.txt ------------------------------------------------------------------------

group = st.one_of(
    st.sampled_from(["console_scripts", "gui_scripts", "a.plugins", "DEFAULT"]), tricky
)
object_ref = st.one_of(
    st.from_regex(
        r"(a|ab|a_b)(\.[a-z]{1,3}){0,2}(:[a-z]{1,4}(\.[a-z]{1,3})?)?( \[[a-z]{1,3}\])?",
        fullmatch=True,
    ),
    mixed_text,
)


@st.composite
def entry_points_bytes(draw: st.DrawFn) -> bytes:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append(f"[{draw(group)}]")
        for key, value in draw(st.lists(st.tuples(mixed_text, object_ref), max_size=4)):
            lines.append(f"{key} = {value}")
            if draw(st.integers(0, 9)) == 0:
                lines.append("    continued")
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# comment", "; comment"])))
    return to_bytes(lines, "\n")


def parse_ini(data: bytes) -> dict[str, dict[str, str]]:
    """How entry_points.txt reads: every section is a group, DEFAULT included."""
    parser = configparser.ConfigParser(
        delimiters=("=",), interpolation=None, strict=False, default_section="\n"
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(data.decode("utf-8"))
    return {name: dict(parser[name]) for name in parser.sections()}


@given(data=st.one_of(entry_points_bytes(), st.binary(max_size=300)), drop=st.booleans())
@example(data=b"[DEFAULT]\nx = a:main\n[a.plugins]\ny = a.b:f\n", drop=False)
@example(data=b"[console_scripts]\nx = a:main\n    extra\n", drop=False)
def test_edit_entry_points_output_reads_back(data: bytes, drop: bool) -> None:
    mapping = {"a": "a_1_0_deadbeef"}
    try:
        new, dropped = edit_entry_points(data, mapping, drop_scripts=drop, where=WHERE)
    except WheelFormatError as exc:
        assert exc.path == WHERE
        assert "\n" not in str(exc)
        return
    # The output parses again, and keeps every group and name that was not dropped.
    again, _ = edit_entry_points(new, mapping, drop_scripts=False, where=WHERE)
    assert again == new  # already rewritten: a second pass changes nothing
    before, after = parse_ini(data), parse_ini(new)
    kept = {
        name: list(items)
        for name, items in before.items()
        if not (drop and name in ("console_scripts", "gui_scripts"))
    }
    assert {name: list(items) for name, items in after.items()} == kept
    assert sorted(dropped) == sorted(
        key for name in ("console_scripts", "gui_scripts") if drop for key in before.get(name, {})
    )


@given(data=entry_points_bytes())
def test_edit_entry_points_without_renames_keeps_every_value(data: bytes) -> None:
    try:
        new, _ = edit_entry_points(data, {}, drop_scripts=False, where=WHERE)
    except WheelFormatError:
        return
    assert parse_ini(new) == parse_ini(data)
