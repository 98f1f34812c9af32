"""A reference to an address: where it is encoded in the file and what it points at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SiteKind = Literal["code", "arm64", "relocation", "pointer", "symbol"]


@dataclass(frozen=True)
class Site:
    """One place that refers to ``target`` (a virtual address).

    ``offset`` is the file offset of the field that encodes the reference: the 32-bit
    displacement (``code``, x86-64), the instruction that completes the address (``arm64``:
    two instructions may encode it, see arm64_moves), the relocation's addend
    (``relocation``), the stored 64-bit value (``pointer``) or the symbol's value
    (``symbol``). ``base`` is what the field is
    relative to (it holds ``target - base``): the address of the next instruction for
    ``code``, minus ImageBase for a PE ``pointer`` (an absolute value the loader rebases),
    else 0.
    """

    kind: SiteKind
    offset: int
    target: int
    base: int
    #: False for a code site confirmed only by a local decode (no function starts known),
    #: or a pointer whose slot does not hold the plain address (a Mach-O chained fixup).
    exact: bool = True
