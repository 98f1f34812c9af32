"""Room for new read-only data: the unused end of the last page of a read-only segment."""

from __future__ import annotations

from wheelshade.native.elf import PF_W, PF_X, PT_LOAD, SHT_NOBITS, Elf, Segment
from wheelshade.native.model import Appended

_PAGE = 0x1000


class Slack:
    """Unused bytes after the last read-only LOAD segment's data, up to the end of its
    last page: the loader maps that page anyway, no section covers those bytes, and the
    next segment begins on a later page. Copies go there, in order, after the first
    ``used`` bytes."""

    def __init__(self, data: bytes, elf: Elf, used: int = 0) -> None:
        self.segment: Segment | None = None
        self.used = used
        self.room = 0
        loads = sorted((s for s in elf.segments if s.type == PT_LOAD), key=lambda s: s.vaddr)
        for index, seg in enumerate(loads):
            if seg.flags & (PF_X | PF_W) or seg.filesz != seg.memsz:
                continue
            end = seg.offset + seg.filesz
            page_end = (seg.vaddr + seg.memsz + _PAGE - 1) // _PAGE * _PAGE
            limit = page_end - (seg.vaddr + seg.memsz)
            if index + 1 < len(loads):
                following = loads[index + 1]
                if following.vaddr // _PAGE * _PAGE < page_end:
                    limit = 0  # the next segment's mapping starts on this last page
                else:
                    limit = min(limit, max(0, following.offset - end))
            if any(s.offset < end + limit and s.end > end for s in elf.sections
                   if s.type != SHT_NOBITS and s.size):
                limit = 0
            limit = min(limit, max(0, len(data) - end))
            if limit > self.room and not any(data[end:end + limit]):
                self.segment, self.room = seg, limit

    def take(self, text: bytes, name: str) -> tuple[Appended, int] | None:
        """Room for ``text``: the copy to write, and the address it is loaded at."""
        seg = self.segment
        if seg is None or self.used + len(text) > self.room:
            return None
        at = seg.filesz + self.used
        self.used += len(text)
        added = Appended(seg.offset + at, text, name, seg.header, seg.filesz + self.used)
        return added, seg.vaddr + at

    def give_back(self, added: Appended) -> None:
        """Free the room of the copy taken last (its references could not be moved)."""
        self.used -= len(added.text)
