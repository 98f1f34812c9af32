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
#: (lazy matching, chain length) of the parses tried, tightest first.
_VARIANTS = ((True, _CHAIN), (False, _CHAIN), (True, 8), (False, 8))

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
    # Parses that differ slightly end with different token counts, and so different flag
    # bytes: where one cannot be grown by exactly the bytes needed, another usually can.
    for lazy, chain in _VARIANTS:
        tokens = _parse(text, lazy=lazy, chain=chain)
        widths = [_width(t) for t in tokens]
        if _fit(tokens, widths, size):
            return _emit(text, tokens, widths)
    return None


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


def _parse(text: bytes, *, lazy: bool = True, chain: int = _CHAIN) -> list[Token]:
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
        for source in reversed(chains.get(text[at:at + MIN_MATCH], [])[-chain:]):
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
        if lazy and length and at + 1 < n and best(at + 1)[0] > length + 1:
            length = 0
        if length:
            tokens.append((1, distance, length, at))
            at += length
        else:
            tokens.append((0, 0, 1, at))
            at += 1
    return tokens


def _fit(tokens: list[Token], widths: list[int], size: int) -> bool:
    """Grow the encoding to exactly ``size`` bytes in place; False if it cannot be.

    Each step applies the edit that adds the most bytes without passing ``size`` (flag
    bytes counted): a two-byte far reference written in the three-byte form (+1), a
    reference shortened by one byte that follows as a literal (about +1), or a reference
    written out as literals (up to its length).
    """
    total = _total(tokens, widths)
    while total < size:
        edit = _best_edit(tokens, widths, size - total)
        if edit is None:
            return False
        index, new_tokens = edit
        tokens[index:index + 1] = new_tokens
        widths[index:index + 1] = [_width(t) for t in new_tokens]
        if len(new_tokens) == 1:  # widened: the same token in its three-byte form
            widths[index] = 3
        total = _total(tokens, widths)
    return total == size


def _best_edit(
    tokens: Sequence[Token], widths: Sequence[int], missing: int
) -> tuple[int, list[Token]] | None:
    count = len(tokens)
    flags = (count + 7) // 8
    best: tuple[int, int, list[Token]] | None = None  # (gain, index, replacement)
    for index in range(count - 1, -1, -1):
        kind, distance, length, at = tokens[index]
        if kind != 1:
            continue
        width = widths[index]
        options: list[tuple[int, list[Token]]] = []
        if width == 2 and NEAR <= distance < FAR:
            options.append((1, [tokens[index]]))
        if length > MIN_MATCH:
            shorter: Token = (1, distance + 1, length - 1, at)
            if distance + 1 < FAR:
                gain = _width(shorter) + 1 - width + (count + 8) // 8 - flags
                options.append((gain, [shorter, (0, 0, 1, at + length - 1)]))
        literals = [(0, 0, 1, at + k) for k in range(length)]
        options.append((length - width + (count + length - 1 + 7) // 8 - flags, literals))
        for gain, replacement in options:
            if 0 < gain <= missing and (best is None or gain > best[0]):
                best = (gain, index, replacement)
                if gain == missing:
                    return index, replacement
    return None if best is None else (best[1], best[2])


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
