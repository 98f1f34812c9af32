"""METADATA: every header field the ``email`` parser (packaging, pip) reads is one the editor sees.

wheelshade reads METADATA to plan and edits it line by line; pip reads the edited file with
``email``. The three must agree on where the header block ends and what each field holds,
or a ``Requires-Dist`` is planned but never rewritten.
"""

from __future__ import annotations

import email.parser
import email.policy

from hypothesis import example, given
from hypothesis import strategies as st
from packaging.requirements import Requirement

from wheelshade.errors import WheelFormatError
from wheelshade.wheel.metadata import edit_metadata, header_fields, read_metadata

WHERE = "demo-1.0.dist-info/METADATA"

#: Lines that sit inside a header block in real METADATA files, and lines that end it.
key = st.sampled_from(["Name", "Version", "Requires-Dist", "License", "Summary", "X-Y", "a"])
value = st.text(alphabet=st.sampled_from("ab1 .:=-\t\u00e9"), max_size=12)
line = st.one_of(
    st.tuples(key, value).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.just("Requires-Dist: dep>=1.0"),
    st.just("Requires-Dist: other; extra == 'x'"),
    value.map(lambda v: " " + v),  # a continuation
    value.map(lambda v: "\t" + v),
    st.sampled_from(["", " ", "\t", "   ", " \t "]),  # empty and whitespace-only lines
    st.sampled_from(["From x", "From: y", ":z", "no colon here", "Bad Key: v"]),
)


@st.composite
def metadata_text(draw: st.DrawFn) -> str:
    lines = ["Metadata-Version: 2.1", "Name: demo", "Version: 1.0", *draw(st.lists(line))]
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return eol.join(lines) + draw(st.sampled_from(["", eol]))


def email_fields(text: str) -> list[tuple[str, str]]:
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
    return [(k, " ".join(str(v).split())) for k, v in message.items()]


def editor_fields(data: bytes) -> list[tuple[str, str]]:
    lines = data.splitlines(keepends=True)
    out = []
    for field in header_fields(lines):
        raw = b"".join(lines[field.start : field.end]).decode("utf-8").partition(":")[2]
        out.append((field.key, " ".join(raw.split())))
    return out


LICENSE_WITH_BLANKS = (
    "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nLicense: Copyright (c) 2023\n"
    "        \n        All rights reserved.\n \n        Redistribution ...\n"
    "Requires-Dist: dep>=1.0\n\nlong description\nRequires-Dist: not-a-header\n"
)


@given(text=metadata_text())
@example(text=LICENSE_WITH_BLANKS)
def test_editor_sees_every_field_the_email_parser_reads(text: str) -> None:
    data = text.encode("utf-8")
    assert editor_fields(data) == email_fields(text)


@given(text=metadata_text())
@example(text=LICENSE_WITH_BLANKS)
def test_every_requires_dist_read_is_rewritten(text: str) -> None:
    data = text.encode("utf-8")
    try:
        meta = read_metadata(data, where=WHERE)
    except WheelFormatError:
        return
    seen: list[str] = []

    def shade(req: Requirement) -> Requirement:
        seen.append(str(req))
        new = Requirement(str(req))
        new.name = "shaded-" + req.name
        return new

    edited = edit_metadata(data, name="demo-shaded", requirement=shade)
    assert seen == [str(r) for r in meta.requires]
    # What pip reads from the edited file: only shaded requirements, the new name.
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(edited.decode())
    assert message.get_all("Name") == ["demo-shaded"]
    after = [Requirement(" ".join(v.split())) for v in message.get_all("Requires-Dist") or []]
    assert [r.name for r in after] == ["shaded-" + r.name for r in meta.requires]


def test_license_with_whitespace_only_lines_keeps_requires_dist_in_the_header() -> None:
    meta = read_metadata(LICENSE_WITH_BLANKS.encode(), where=WHERE)
    assert [str(r) for r in meta.requires] == ["dep>=1.0"]
