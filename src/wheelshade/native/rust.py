"""Rust binaries: ``&str`` literals kept back to back, which occurrences can be literals."""

from __future__ import annotations

from collections.abc import Callable

from wheelshade.native import refs
from wheelshade.native.elf import Elf
from wheelshade.native.model import IDENT_BYTES, Reference
from wheelshade.native.x86_64_calls import Calls


def is_rust(data: bytes) -> bool:
    """Rust code: its panic locations name the toolchain's sources."""
    return b"/rustc/" in data or b"RUST_BACKTRACE" in data


def rust_words(
    data: bytes, elf: Elf, names: list[str], found: list[Reference]
) -> tuple[list[Reference], frozenset[tuple[int, str]]]:
    """Every occurrence in a Rust binary that the C-string scan did not find, and the
    (offset, name) of those that run on into a letter.

    Rust stores ``&str`` literals back to back without terminators and refers to them by
    pointer and length: ``"...IPAddresscryptography.hazmat.primitives.kdf.kbkdfOCSPNonce"``
    holds a module path between two other literals, with no byte to tell where it starts.
    Only what points at the name can (see verdicts.resolve): a literal starts at a byte that is
    referenced, so the name is patched there and left alone inside a longer literal
    (``errors.pydantic.dev``, ``src/rust/cryptography-x509/src/lib.rs``). Where it ends is
    plain when a dot or a non-name byte follows; when a letter follows
    (``"...pydantic_coreauto_collapse"``), the literal is the name only if its length
    comes with the reference (see rust_literals).
    """
    seen = {r.offset for r in found}
    out: list[Reference] = []
    run_on: set[tuple[int, str]] = set()
    for section in elf.data_sections:
        body = data[section.offset:section.end]
        for name in names:
            raw = name.encode("utf-8")
            at = body.find(raw)
            while at >= 0:
                after = body[at + len(raw):at + len(raw) + 1]
                if section.offset + at not in seen:
                    text = body[max(0, at - 20):at + len(raw) + 20]
                    out.append(Reference(name, section.offset + at,
                                         text.decode("utf-8", "backslashreplace"),
                                         section.name, "unbounded"))
                    if after and after in IDENT_BYTES and after != b".":
                        run_on.add((section.offset + at, name))
                at = body.find(raw, at + 1)
    return out, frozenset(run_on)


def rust_literals(
    found: list[Reference], run_on: frozenset[tuple[int, str]],
    alone: Callable[[Reference], list[refs.Site]], calls: Calls | None,
) -> list[Reference]:
    """The occurrences in a Rust binary that can be literals: a name that runs on into a
    letter only when a reference to it comes with the name's length (``calls``; without
    reference analysis, never), and of two names at one offset (``pydantic``,
    ``pydantic_core``) the longer one."""
    kept = [
        r for r in found
        if (r.offset, r.name) not in run_on or (calls is not None and any(
            calls.passes_length(site, len(r.name.encode("utf-8"))) for site in alone(r)
        ))
    ]
    longest: dict[int, Reference] = {}
    for ref in kept:
        held = longest.get(ref.offset)
        if held is None or len(ref.name) > len(held.name):
            longest[ref.offset] = ref
    return [r for r in kept if longest[r.offset] is r]
