"""Cython 3.3's LZSS format: decoding by the format's rules, and encoding to an exact size."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wheelshade.native import lzss

#: Text like a Cython string table: identifiers and module paths run together.
WORDS = [b"__name__", b"__test__", b"numpy", b"numpy.random", b"cline_in_traceback", b"state",
         b"self", b"__pyx_vtable__", b"dtype", b"uint64", b"?"]
tables = st.lists(st.sampled_from(WORDS) | st.binary(min_size=1, max_size=3),
                  min_size=1, max_size=300).map(b"".join)


def test_decode_follows_the_three_reference_forms() -> None:
    # Flags 0b0111: three literals, then a reference: distance 0, length 0 + 3.
    assert lzss.decode(bytes([0b0111, 97, 98, 99, 0, 0]), 0, 6, 6) == (6, b"abcabc")
    text = bytes(range(200)) + bytes(range(10))
    # Literals for 200 bytes, then "\x00..\x09" again: 200 - 10 = 190 bytes back from its end.
    literal_run = b"".join(bytes([0xFF]) + bytes(range(i, i + 8)) for i in range(0, 200, 8))
    middle = bytes([0x80 | (190 - 128) & 0x7F, ((190 - 128) & 0x180) >> 2 | (10 - 3)])
    far = bytes([0x80 | (190 - 128) & 0x7F, 0x80 | ((190 - 128) >> 7), 10 - 3])
    for form in (middle, far):
        stream = literal_run + b"\x00" + form
        assert lzss.decode(stream, 0, len(text), len(stream)) == (len(stream), text)


def test_decode_refuses_what_the_decoder_would_overrun() -> None:
    assert lzss.decode(bytes([0b0110, 97, 0, 0]), 0, 4, 4) is None  # copies before the start
    assert lzss.decode(bytes([0xFF, 97]), 0, 8, 2) is None  # runs out of input
    assert lzss.decode(bytes([0b0111, 97, 98, 99, 0, 9]), 0, 6, 6) is None  # past the end


def _tightest(text: bytes) -> int:
    tokens = lzss._parse(text)
    return lzss._total(tokens, [lzss._width(t) for t in tokens])


@settings(max_examples=60, deadline=None)
@given(text=tables, extra=st.integers(min_value=0, max_value=40))
def test_encode_gives_exactly_the_size_or_nothing(text: bytes, extra: int) -> None:
    tightest = _tightest(text)
    assert lzss.encode(text, tightest - 1) is None
    stream = lzss.encode(text, tightest + extra)
    # Growing needs references to spend (all literals cannot grow).
    if stream is not None:
        assert len(stream) == tightest + extra
        assert lzss.decode(stream, 0, len(text), len(stream)) == (len(stream), text)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS), min_size=200, max_size=600),
       extra=st.integers(min_value=0, max_value=200))
def test_encode_hits_every_size_a_table_needs(words: list[bytes], extra: int) -> None:
    # A table the size of a real module's repeats itself at every distance: it has far
    # references to widen (+1 byte each) and near ones to write out, enough to reach any
    # size from the tightest. (A text of a few bytes may have nothing to spend.)
    text = b"".join(words)
    stream = lzss.encode(text, _tightest(text) + extra)
    assert stream is not None
    assert lzss.decode(stream, 0, len(text), len(stream)) == (len(stream), text)
