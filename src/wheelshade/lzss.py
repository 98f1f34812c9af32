"""Cython 3.3's LZSS string compression: decode a stream, and encode one of an exact size.

The format (Cython's ``__pyx_lzss_decompress``): a flags byte, then eight tokens, low
bit first; a set bit is a literal byte, a clear one a back-reference of two or three
bytes. A reference copies ``length`` bytes that end ``distance`` bytes before the
current output position:

- ``0ddddddd LLLLLLLL``: distance < 128, length 3..258;
- ``1ddddddd 0DDLLLLL``: distance 128..639 (two high bits in ``DD``), length 3..34;
- ``1ddddddd 1DDDDDDD LLLLLLLL``: distance 128..16511 (14 bits), length 3..258.

The decoder stops once the output is full and checks that it consumed exactly the
compressed size compiled into the module; both sizes are constants in code. A same-length
rename keeps the output size, so a new stream must have exactly the old compressed size:
this encoder packs at least as tightly as Cython's (it indexes every position, where
Cython's indexes only token starts) and then spends the difference (a reference widened
to three bytes, or written out as literals) to hit the size exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_MATCH, MAX_MATCH = 3, 258
NEAR = 128  # distances below this fit the first form
MIDDLE = 640  # ... below this, with a short length, the second
FAR = NEAR + (1 << 14)  # ... below this, the third
MIDDLE_MAX_LENGTH = 34
#: Candidates examined per position (most recent first).
_CHAIN = 48

#: A token: (0, 0, 1, position) for a literal, (1, distance, length, position) for a
#: reference; ``position`` is where its output starts.
Token = tuple[int, int, int, int]


def decode(data: bytes, start: int, size: int, limit: int) -> tuple[int, bytes] | None:
    """(bytes consumed, output) for the stream at ``data[start:]`` that fills ``size``
    bytes, or None when it is not a valid stream within ``limit`` input bytes."""
    out = bytearray()
    pos, end = start, min(len(data), start + limit)
    while True:
        if pos >= end:
            return None
        flags = data[pos] | 0xFF00
        pos += 1
        while flags & 0x100:
            if flags & 1:
                if pos >= end:
                    return None
                out.append(data[pos])
                pos += 1
            else:
                if pos + 1 >= end:
                    return None
                lo, hi = data[pos], data[pos + 1]
                pos += 2
                if not lo & 0x80:
                    distance, length = lo, hi
                elif not hi & 0x80:
                    distance, length = NEAR + (((hi << 2) & 0x180) | (lo & 0x7F)), hi & 0x1F
                else:
                    if pos >= end:
                        return None
                    distance = NEAR + ((hi & 0x7F) << 7 | (lo & 0x7F))
                    length = data[pos]
                    pos += 1
                length += MIN_MATCH
                source = len(out) - distance - length
                if source < 0 or len(out) + length > size:
                    return None
                out += out[source:source + length]
            if len(out) >= size:
                return pos - start, bytes(out)
            flags >>= 1


def encode(text: bytes, size: int) -> bytes | None:
    """A stream of exactly ``size`` bytes that decodes to ``text``, or None if the
    tightest one found is larger."""
    tokens = _parse(text)
    widths = [_width(t) for t in tokens]
    if not _fit(tokens, widths, size):
        return None
    return _emit(text, tokens, widths)


def _width(token: Token) -> int:
    """Bytes of the narrowest form for a token (a literal is one byte)."""
    kind, distance, length, _ = token
    if kind == 0:
        return 1
    if distance < NEAR or (distance < MIDDLE and length <= MIDDLE_MAX_LENGTH):
        return 2
    return 3


def _total(tokens: Sequence[Token], widths: Sequence[int]) -> int:
    return sum(widths) + (len(tokens) + 7) // 8


def _parse(text: bytes) -> list[Token]:
    """Greedy longest references over every earlier position, with one step of lazy
    matching (a literal first when the next position matches 2+ bytes longer)."""
    chains: dict[bytes, list[int]] = {}
    tokens: list[Token] = []
    n = len(text)
    indexed = 0

    def best(at: int) -> tuple[int, int]:
        """(length, distance) of the longest usable earlier copy of ``text[at:]``."""
        nonlocal indexed
        while indexed < min(at, n - MIN_MATCH + 1):
            chains.setdefault(text[indexed:indexed + MIN_MATCH], []).append(indexed)
            indexed += 1
        if at + MIN_MATCH > n:
            return 0, 0
        found_length, found_distance = 0, 0
        limit = min(MAX_MATCH, n - at)
        for source in reversed(chains.get(text[at:at + MIN_MATCH], [])[-_CHAIN:]):
            longest = min(limit, at - source)  # a copy must end where the output is
            length = 0
            while length < longest and text[source + length] == text[at + length]:
                length += 1
            if at - source - length >= FAR:  # counted from the copy's end: too far back
                continue
            if length > found_length:
                found_length, found_distance = length, at - source - length
                if length == limit:
                    break
        return (found_length, found_distance) if found_length >= MIN_MATCH else (0, 0)

    at = 0
    while at < n:
        length, distance = best(at)
        if length and at + 1 < n and best(at + 1)[0] > length + 1:
            length = 0
        if length:
            tokens.append((1, distance, length, at))
            at += length
        else:
            tokens.append((0, 0, 1, at))
            at += 1
    return tokens


def _fit(tokens: list[Token], widths: list[int], size: int) -> bool:
    """Grow the encoding to exactly ``size`` bytes in place; False if it cannot be."""
    total = _total(tokens, widths)
    while total < size:
        missing = size - total
        if not (missing <= 2 and _widen(tokens, widths)) and not _spell_out(
            tokens, widths, missing
        ) and not _widen(tokens, widths):
            return False
        total = _total(tokens, widths)
    return total == size


def _widen(tokens: Sequence[Token], widths: list[int]) -> bool:
    """Write one two-byte far reference in the three-byte form (+1 byte, same tokens)."""
    for index in range(len(tokens) - 1, -1, -1):
        kind, distance, _, _ = tokens[index]
        if kind == 1 and widths[index] == 2 and NEAR <= distance < FAR:
            widths[index] = 3
            return True
    return False


def _spell_out(tokens: list[Token], widths: list[int], missing: int) -> bool:
    """Write the reference that adds the most bytes, at most ``missing`` (flag bytes
    included), as literals instead."""
    count = len(tokens)
    flags = (count + 7) // 8
    chosen, chosen_gain = -1, 0
    for index in range(count - 1, -1, -1):
        kind, _, length, _ = tokens[index]
        if kind != 1:
            continue
        gain = length - widths[index] + (count + length - 1 + 7) // 8 - flags
        if chosen_gain < gain <= missing:
            chosen, chosen_gain = index, gain
            if gain == missing:
                break
    if chosen < 0:
        return False
    _, _, length, at = tokens[chosen]
    tokens[chosen:chosen + 1] = [(0, 0, 1, at + k) for k in range(length)]
    widths[chosen:chosen + 1] = [1] * length
    return True


def _emit(text: bytes, tokens: Sequence[Token], widths: Sequence[int]) -> bytes:
    out = bytearray()
    for group in range(0, len(tokens), 8):
        flags = 0
        body = bytearray()
        for bit, index in enumerate(range(group, min(group + 8, len(tokens)))):
            kind, distance, length, at = tokens[index]
            if kind == 0:
                flags |= 1 << bit
                body.append(text[at])
                continue
            code = length - MIN_MATCH
            if widths[index] == 2 and distance < NEAR:
                body += bytes((distance, code))
            elif widths[index] == 2:
                far = distance - NEAR
                body += bytes((0x80 | (far & 0x7F), ((far >> 2) & 0x60) | code))
            else:
                far = distance - NEAR
                body += bytes((0x80 | (far & 0x7F), 0x80 | ((far >> 7) & 0x7F), code))
        out.append(flags)
        out += body
    return bytes(out)
