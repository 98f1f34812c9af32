"""delvewheel's patch in ``__init__.py``: the ``<dist>.libs`` folder it adds renamed with it.

delvewheel (the Windows counterpart of auditwheel) copies the DLLs a wheel needs into
``<dist>.libs`` and writes, between two marker comments at the top of each package's
``__init__.py``, a ``_delvewheel_patch_<version>()`` function that passes that folder to
``os.add_dll_directory``. The folder is renamed with the shaded distribution (see plan), so
the name in the patch must follow: left alone, the shaded package would find no DLLs, or
the unshaded package's copies when both are installed. Only the text between the markers
is touched, and only a string literal that is exactly a renamed folder's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_BLOCK = re.compile(rb"^# start delvewheel patch\r?$.*?^# end delvewheel patch\r?$", re.M | re.S)


def rename_libs(source: bytes, renames: Iterable[tuple[str, str]]) -> bytes | None:
    """``source`` with each ``'<old>.libs'`` literal in delvewheel's patch block replaced by
    its new name, or None when nothing changed."""
    table = dict(renames)
    if not table or b"# start delvewheel patch" not in source:
        return None
    words = b"|".join(re.escape(old.encode("utf-8")) for old in sorted(table, key=len)[::-1])
    literal = re.compile(rb"(['\"])(" + words + rb")\1")

    def block(match: re.Match[bytes]) -> bytes:
        return literal.sub(
            lambda m: m[1] + table[m[2].decode("utf-8")].encode("utf-8") + m[1], match[0])

    new = _BLOCK.sub(block, source)
    return new if new != source else None
