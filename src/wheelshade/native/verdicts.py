"""Verdicts: patch, leave or refuse each occurrence, decided by who refers to its bytes."""

from __future__ import annotations

import re
from dataclasses import replace

from wheelshade.native import arm64_moves, immediates, refs
from wheelshade.native.elf import Elf
from wheelshade.native.model import Appended, Redirect, Reference
from wheelshade.native.rust import rust_literals
from wheelshade.native.slack import Slack
from wheelshade.native.x86_64_calls import Calls


def resolve(
    data: bytes, elf: Elf, found: list[Reference], *, cython: bool, rust: bool = False,
    words: list[Reference] | None = None, run_on: frozenset[tuple[int, str]] = frozenset(),
) -> tuple[list[Reference], list[Reference], list[Reference], list[Redirect], list[Appended]]:
    """Sort occurrences into (patch, refuse, leave alone) by who refers to their bytes.

    Patching ``T`` at address ``a`` changes what every reference into ``[s, a + len(T))``
    reads, where ``s`` starts the text that runs into ``T``. References to ``a`` want the
    module name; references into ``[s, a)`` want the longer string; a reference into the
    name's own bytes wants a shorter tail of it. See refs for how references are found.
    """
    words = words or []
    if not found and not words:
        return [], [], [], [], []
    unproven = [r for r in found if r.verdict == "unproven"]
    if not refs.supported(elf):
        found = [r for r in found if r.verdict != "unproven"]
        found = found + rust_literals(words, run_on, lambda r: [], None)
        plain = [r for r in found if r.kind == "string"]
        return plain, [
            replace(r, verdict="unknown", detail=(
                f"references cannot be analysed in a {elf.bits}-bit {elf.byte_order}-endian "
                f"{elf.kind} file (x86-64 and arm64 ELF only so far)"
            ))
            for r in found if r.kind != "string"
        ], unproven, [], []
    spans: dict[Reference, tuple[int, int]] = {}
    targets: set[int] = set()
    for ref in found + words:
        at = refs.address_of(elf, ref.offset)
        if at is None:  # pragma: no cover - data sections are always mapped
            continue
        start = at if ref.counted else at - (ref.offset - _text_start(data, ref.offset))
        spans[ref] = (start, at)
        targets.update(range(start, at + len(ref.name.encode("utf-8"))))
    by_target: dict[int, list[refs.Site]] = {}
    for site in refs.find(data, elf, targets):
        by_target.setdefault(site.target, []).append(site)
    calls = Calls(data, elf)
    if words:  # which Rust words are literals is known only with the references
        dropped = set(words) - set(rust_literals(
            [w for w in words if w in spans], run_on,
            lambda r: by_target.get(spans[r][1], []), calls))
        spans = {r: span for r, span in spans.items() if r not in dropped}
    patch: list[Reference] = []
    refuse: list[Reference] = []
    leave: list[Reference] = []
    conflicts: list[tuple[Reference, int, list[refs.Site], list[refs.Site]]] = []
    for ref, (start, at) in spans.items():
        size = len(ref.name.encode("utf-8"))
        inner = [s for t in range(at + 1, at + size) for s in by_target.get(t, ())]
        alone = by_target.get(at, [])
        if ref.verdict == "unproven":
            # No evidence in the set that it is a module path; the code may give some.
            apis = sorted({a for s in alone if (a := calls.module_argument_of(s))})
            if not apis:
                leave.append(ref)
                continue
            ref = replace(ref, verdict="", detail=f"passed to {', '.join(apis)}")
        head = [s for t in range(start, at) for s in by_target.get(t, ())]
        if start != at and not alone and not inner and cython and _in_init_label(
            data, ref.offset - (at - start)
        ) and not _IDENTIFIER.match(data, ref.offset - 1):
            # Whether the linker merged a tail into the label or not (MSVC does not), the
            # label reads the same and only a traceback shows it; a name that merely ends
            # a longer identifier (``msgpack`` in ``_cmsgpack``) is not the module's.
            patch.append(replace(ref, verdict="label", detail=(
                "the longer string is Cython's module-init traceback label; renaming a "
                "module in it changes only how a traceback names that function"
            )))
        elif start != at and not alone:
            leave.append(replace(ref, verdict="never-alone", detail=(
                f"nothing refers to {ref.name!r} on its own; it is part of a longer string only"
            )))
        elif inner:
            refuse.append(replace(ref, verdict="inner", detail=(
                f"{_where(inner)} point(s) into the middle of {ref.name!r}, at a shorter "
                "string that shares its bytes"
            )))
        elif not rust and (apis := _name_arguments(data, ref, alone, calls)):
            leave.append(replace(ref, verdict="attribute", detail=(
                f"{ref.name!r} on its own is only passed as an attribute name "
                f"({', '.join(apis)}), not a module name"
            )))
        elif start == at:
            patch.append(ref)
        elif not head:
            patch.append(replace(ref, verdict="used-alone", detail=(
                f"only {ref.name!r} itself is referenced ({_where(alone)}); the text before "
                "it is not"
            )))
        elif rust:
            # Rust literals are not C strings: the text before the name is other literals,
            # not a longer string this one is the tail of; a reference to the name's first
            # byte is a literal that starts there.
            patch.append(replace(ref, verdict="used-alone", detail=(
                f"a Rust literal starts at {ref.name!r} ({_where(alone)}); the text before "
                "it belongs to other literals (Rust keeps them back to back)"
            )))
        elif cython and _in_init_label(data, ref.offset - (at - start)):
            patch.append(replace(ref, verdict="label", detail=(
                "the longer string is Cython's module-init traceback label; renaming a "
                "module in it changes only how a traceback names that function"
            )))
        elif paths := _module_literals(data, ref, at, alone, head, calls):
            # Literals with lengths (Rust's ``&str``): ``pkg`` and ``pkg.Type`` start at
            # one byte and both are module paths; the literals before end before them.
            patch.append(replace(ref, verdict="used-alone", detail=(
                f"the literals that start at {ref.name!r} are module paths "
                f"({', '.join(map(repr, paths))}; {_where(alone)}), and those before it "
                f"end before it ({_where(head)})"
            )))
        else:
            conflicts.append((ref, at, alone, head))
    redirects: list[Redirect] = []
    appended: list[Appended] = []
    copies: dict[bytes, list[Reference]] = {}
    for r in patch:
        if r.verdict == "" and r.kind == "string":
            copies.setdefault(c_string(data, r.offset), []).append(r)
    slack = Slack(data, elf) if conflicts else None  # read the segments only when needed
    for ref, _at, alone, head in conflicts:
        text = c_string(data, ref.offset)
        # Rewriting a reference is only safe where the instruction is known for sure.
        movable = all(s.kind in _MOVABLE and s.exact for s in alone)
        moves: list[Redirect] | str = ""
        where = ""
        # The nearest copy first: arm64 code may reach only a copy on the tail's page.
        for copy in sorted(copies.get(text, []), key=lambda c: abs(c.offset - ref.offset)):
            target = refs.address_of(elf, copy.offset)
            if movable and target is not None:
                moves = _moves(data, elf, alone, target)
                if isinstance(moves, list):
                    where = f"its standalone copy at {copy.offset:#x}"
                    break
        if movable and isinstance(moves, str) and slack is not None:
            room = slack.take(text + b"\0", ref.name)
            if room is not None:
                added, target = room
                moves = _moves(data, elf, alone, target)
                if isinstance(moves, str):
                    slack.give_back(added)
                else:
                    appended.append(added)
                    where = f"a standalone copy added at {added.offset:#x}"
        if isinstance(moves, str):
            why = f" to move those uses to ({moves})" if moves else " to move those uses to"
            refuse.append(replace(ref, verdict="conflict", detail=(
                f"the longer string is used ({_where(head)}) and so is {ref.name!r} on its "
                f"own ({_where(alone)}): a linker merged them, and no standalone copy of "
                f"{_short(text)!r} exists or fits{why}"
            )))
            continue
        redirects += moves
        leave.append(replace(ref, verdict="split", detail=(
            f"the longer string is used ({_where(head)}); the {len(alone)} use(s) of "
            f"{ref.name!r} on its own now point at {where}"
        )))
    held = immediates.compared(data, elf, {c for r in patch if (c := _lead(data, r))})
    for ref in [r for r in patch if _lead(data, r) in held]:
        patch.remove(ref)
        lead = _lead(data, ref) or b""
        refuse.append(replace(ref, verdict="compared", detail=(
            f"the code compares text with {lead.decode('utf-8', 'replace')!r} as an "
            f"immediate (an inlined comparison at {held[lead]:#x}), which renaming the "
            "string would not reach"
        )))
    return patch, refuse, leave, redirects, appended


def _lead(data: bytes, ref: Reference) -> bytes | None:
    """The first bytes of the C string the name starts, as an inlined comparison loads them
    (see immediates), or None when the name does not start a long enough string."""
    if ref.kind == "symbol" or (ref.offset and data[ref.offset - 1]):
        return None
    return immediates.chunk(c_string(data, ref.offset))


#: References a split can move: displacements, addends, stored pointers, arm64 instructions.
_MOVABLE = ("code", "relocation", "pointer", "arm64")


def _moves(data: bytes, elf: Elf, sites: list[refs.Site], target: int) -> list[Redirect] | str:
    """Redirects that point each of ``sites`` (all at one address) at ``target``, or why
    they cannot (arm64 code needs its page register followed, see arm64_moves)."""
    moves = [Redirect(s, target - s.target) for s in sites if s.kind != "arm64"]
    arm = [s for s in sites if s.kind == "arm64"]
    if arm:
        words = arm64_moves.plan(data, elf, arm, target)
        if isinstance(words, str):
            return words
        moves += [Redirect(s, target - s.target, tuple(words[s])) for s in arm]
    return moves


def _name_arguments(
    data: bytes, ref: Reference, alone: list[refs.Site], calls: Calls
) -> list[str]:
    """The C-API functions a bare name is passed to as an attribute or key name, when that
    is every use of it (``PyModule_AddObjectRef(m, "greenlet", type)``); else empty."""
    if not alone or c_string(data, ref.offset) != ref.name.encode("utf-8"):
        return []
    apis = [calls.name_argument_of(site) for site in alone]
    return sorted({a for a in apis if a}) if all(apis) else []


def _module_literals(
    data: bytes, ref: Reference, at: int, alone: list[refs.Site], head: list[refs.Site],
    calls: Calls,
) -> list[str]:
    """The module paths read by every reference to the name's first byte, when each reads
    the name or the name followed by ``.identifier``s, and every reference before it comes
    with a length that ends before it; else empty (not known to be so).

    A reference without a length reads the C string there; one with lengths (a pointer
    and length, see Calls.lengths) reads exactly that many bytes, each of which must end
    a module path.
    """
    text = c_string(data, ref.offset)
    path = re.compile(re.escape(ref.name.encode("utf-8")) + _DOTTED)
    read: set[bytes] = set()
    for site in alone:
        lengths = {n for n in calls.lengths(site) if 0 < n <= len(text)} or {len(text)}
        if not all(path.fullmatch(text, 0, n) for n in lengths):
            return []
        read |= {text[:n] for n in lengths}
    for site in head:
        before = at - site.target
        known = calls.lengths(site)
        if not any(0 < n <= before for n in known) or any(
            before < n <= before + len(text) for n in known
        ):
            return []
    return sorted(r.decode("utf-8") for r in read)


_DOTTED = rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_IDENTIFIER = re.compile(rb"[A-Za-z0-9_]")


def _short(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= 60 else text[:57] + "..."


def c_string(data: bytes, offset: int) -> bytes:
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else len(data)]


def _text_start(data: bytes, offset: int) -> int:
    """Where the printable text that runs into ``offset`` begins (after a NUL or binary data).

    Bytes that are not printable text (a preceding float or table) end the walk: nothing
    reads binary data as a C string, so a name right after it starts its own string.
    """
    start = offset
    floor = max(0, offset - 4096)
    while start > floor:
        byte = data[start - 1]
        if 0x20 <= byte < 0x7F or byte in (0x09, 0x0A, 0x0D):
            start -= 1
            continue
        if byte < 0x80:
            break
        # A UTF-8 sequence ending at start - 1 (its lead byte at most 3 bytes back).
        for lead in range(start - 2, max(floor, start - 4) - 1, -1):
            try:
                char = data[lead:start].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(char) == 1 and char.isprintable():
                start = lead
                break
        else:
            break
    return start


_INIT_LABEL = re.compile(rb"init [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\0")


def _in_init_label(data: bytes, start: int) -> bool:
    """True if the C string at ``start`` is ``"init <module path>"``, the traceback label
    Cython gives a module's init function (used by nothing but traceback printing)."""
    return _INIT_LABEL.match(data, start) is not None


def _where(sites: list[refs.Site]) -> str:
    kinds = sorted({s.kind for s in sites})
    return f"{len(sites)} {'/'.join(kinds)} reference(s)"
