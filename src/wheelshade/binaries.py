"""One compiled member of the set: its names patched, its RPATH moved, the result checked."""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from wheelshade.errors import RewriteError, WheelshadeError
from wheelshade.native import macho, macho_patch, pe, pe_patch
from wheelshade.native.classify import classify
from wheelshade.native.model import BinaryInfo
from wheelshade.native.patching import patch_strings, relocate_rpath, rename_init_symbol, set_rpath
from wheelshade.plan import MemberAction, ShadePlan
from wheelshade.proof import ModuleProof


def patched(
    data: bytes, act: MemberAction, info: BinaryInfo, plan: ShadePlan, proof: ModuleProof
) -> bytes:
    """A compiled module with its references to shaded names patched in place (same length).

    Checked afterwards: classifying the result (with the scan's ``proof``) must find no
    shaded original name left.
    """
    try:
        data = patch_strings(data, info, plan.mapping)
    except ValueError as exc:
        # The plan said the file could be patched; the bytes disagree (a copy out of reach
        # of a reference, padding that is not free): refuse rather than write a guess.
        raise RewriteError(
            f"cannot patch it: {exc}", path=info.path, hint="please report this wheel"
        ) from None
    module = info.module_name
    filename = posixpath.basename(act.target)
    loaded_as = "" if filename.startswith("__init__.") else filename.split(".", 1)[0]
    init = None
    if module is not None and module in plan.mapping and loaded_as in ("", plan.mapping[module]):
        # PyInit_<name> must match the last part of the name the module is imported as:
        # a compiled package __init__ (PyInit_<package>) and a module renamed for real (a
        # mypyc group library) get the shaded name. A top-level extension module moved
        # into a wrapper package keeps its file name, and so its symbol.
        init = (module, plan.mapping[module])
    if pe.is_pe(data):  # exports, CheckSum and signature are edited in place (see pe_patch)
        data = pe_patch.finish(data, info.path, init)[0]
    elif macho.is_macho(data):  # each slice: symbol table, export trie, code signature
        data = macho_patch.finish(data, info.path, init)[0]
    elif init is not None:
        data = _with_init_symbol(data, *init, info.path)
    after = classify(data, info.path, plan.mapping, proof)
    left = sorted({r.name for r in (*after.references, *after.suspects) if r.kind != "symbol"}
                  | set(after.packed_names))
    if left:
        raise RewriteError(
            f"still refers to {', '.join(left)} after patching",
            path=info.path,
            hint="please report this wheel",
        )
    return data


def new_rpath(info: BinaryInfo, act: MemberAction, renames: Mapping[str, str]) -> str | None:
    """The RPATH a moved binary needs to find its grafted libraries again, or None."""
    old = ":".join(info.rpath or info.runpath)
    if not old:
        return None
    new = relocate_rpath(old, act.source, act.target, renames)
    return new if new != old else None


def with_rpath(data: bytes, rpath: str, info: BinaryInfo) -> bytes:
    """``data`` with its RPATH set by patchelf (files only), or Mach-O load commands."""
    if macho.is_macho(data):  # each @loader_path entry (see classify) by its new value
        return macho_patch.relink(data, info.path, info.runpath, rpath.split(":"))
    return _through_file(data, lambda path: set_rpath(path, rpath), "set its RPATH", info.path)


def _with_init_symbol(data: bytes, old: str, new: str, where: str) -> bytes:
    """``data`` with ``PyInit_<old>`` renamed to ``PyInit_<new>`` (patchelf)."""
    return _through_file(data, lambda path: rename_init_symbol(path, old, new),
                         f"rename PyInit_{old}", where)


def _through_file(data: bytes, edit: Callable[[Path], None], what: str, where: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="wheelshade-patch-") as tmp:
        path = Path(tmp) / "module.so"
        path.write_bytes(data)
        try:
            edit(path)
        except WheelshadeError as exc:
            raise RewriteError(f"cannot {what}: {exc.message}", path=where) from None
        return path.read_bytes()
