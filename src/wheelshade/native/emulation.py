"""Interpreters a load check can run: this one, or a foreign CPython under qemu-user or wine.

A patched module built for another architecture cannot be imported here, but it can be
imported by that architecture's CPython run under ``qemu-<machine> -L SYSROOT`` (a user-mode
emulator: no virtual machine, no binfmt_misc). Which sysroot to use is a property of the
machine, not of a shading set, so it is read from the environment
(``WHEELSHADE_QEMU_AARCH64=SYSROOT``; ``WHEELSHADE_QEMU=/path/to/qemu-aarch64`` when the
emulator is not on PATH), and only when a module actually needs it.

Windows modules are loaded the same way by a Windows CPython under wine: PyPI's embeddable
distribution unpacked into a folder (``WHEELSHADE_WINE=FOLDER`` holding ``python.exe``;
``WHEELSHADE_WINE_LOADER=/path/to/wine`` when ``wine64``/``wine`` is not on PATH). Wine's own
variables (``WINEPREFIX``, ...) are passed through as set. Its ``-c`` scripts and POSIX paths
work as given (wine maps ``/`` to drive ``Z:``); its output is read through a pipe.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import parse_wheel_filename

from wheelshade.errors import WheelshadeError

#: ELF machine (as native/elf.py names it) -> the variable naming its sysroot.
VARIABLES = {"aarch64": "WHEELSHADE_QEMU_AARCH64"}
QEMU_VARIABLE = "WHEELSHADE_QEMU"
#: The key a Windows wheel's modules are looked up by (whatever their machine).
WINDOWS = "windows"
WINE_VARIABLE = "WHEELSHADE_WINE"
WINE_LOADER_VARIABLE = "WHEELSHADE_WINE_LOADER"
_WINDOWS_PLATFORMS = {"AMD64": "win_amd64", "ARM64": "win_arm64", "x86": "win32"}
_DOCS = "see docs/cli.md, 'Load check under emulation'"
#: The oldest glibc a manylinux tag names (manylinux2014 is manylinux_2_17).
_OLDEST_GLIBC = 17


class EmulationError(WheelshadeError):
    """The configured emulator or sysroot cannot run the foreign interpreter."""


@dataclass(frozen=True)
class Interpreter:
    """A command that runs a Python interpreter, and the wheel tags it can load."""

    command: tuple[str, ...]
    #: For messages: "this interpreter (cpython 3.13.1)".
    label: str
    tags: frozenset[Tag]
    emulated: bool = False

    def loads(self, wheel: Path) -> bool:
        return bool(parse_wheel_filename(wheel.name)[3] & self.tags)


def host(python: str) -> Interpreter:
    """The interpreter running wheelshade (or ``python``, a target environment's)."""
    version = f"{sys.implementation.name} {sys.version.split()[0]}"
    return Interpreter((python,), f"this interpreter ({version})", frozenset(sys_tags()))


def configured(machine: str, environ: Mapping[str, str] = os.environ) -> Interpreter | None:
    """The emulated interpreter for ``machine``, None when none is configured.

    Raises EmulationError when one is configured but cannot run: the user asked for the
    check, so silently skipping it would hide that.
    """
    if machine == WINDOWS:
        return _wine(environ)
    variable = VARIABLES.get(machine)
    value = environ.get(variable, "") if variable else ""
    if not variable or not value:
        return None
    root = Path(value).resolve()
    python = _python_in(root, variable)
    qemu = environ.get(QEMU_VARIABLE) or shutil.which(f"qemu-{machine}") or shutil.which(
        f"qemu-{machine}-static")
    if not qemu or not Path(qemu).is_file():
        raise EmulationError(
            f"{variable} is set, but qemu-{machine} was not found"
            + (f" ({QEMU_VARIABLE}={qemu} is not a file)" if qemu else " on PATH"),
            hint=f"install qemu-user or set {QEMU_VARIABLE} to the emulator; {_DOCS}",
        )
    command = (str(Path(qemu).resolve()), "-L", str(root), str(python))
    return _describe(command, variable, machine)


def how_to_enable(machine: str) -> str:
    """What a note says about checking ``machine`` modules, or "" when nothing can."""
    if machine == WINDOWS:
        return (f"; to load-check Windows modules under wine, set {WINE_VARIABLE} to a folder "
                f"holding an embeddable CPython's python.exe ({_DOCS})")
    variable = VARIABLES.get(machine)
    if variable is None:
        return ""
    return (f"; to load-check {machine} modules under qemu-{machine}, set {variable} to a "
            f"sysroot holding an {machine} usr/bin/python3.X ({_DOCS})")


def _python_in(root: Path, variable: str) -> Path:
    """``ROOT/usr/bin/python3.13``, else the highest ``python3.*`` there."""
    found = sorted(
        (p for p in (root / "usr" / "bin").glob("python3.*") if p.name[8:].isdigit()),
        key=lambda p: int(p.name[8:]),
    )
    preferred = root / "usr" / "bin" / "python3.13"
    if preferred.exists():
        return preferred
    if not found:
        raise EmulationError(
            f"{variable}={root}: no usr/bin/python3.* there",
            hint=f"point it at a sysroot with the foreign CPython unpacked into it; {_DOCS}",
        )
    return found[-1]


_ASK = ("import json, platform, sys; print(json.dumps([sys.implementation.name, "
        "list(sys.version_info[:2]), sys.version.split()[0], sys.abiflags, "
        "platform.libc_ver(), platform.machine()]))")


@functools.cache
def _describe(command: tuple[str, ...], variable: str, machine: str) -> Interpreter:
    """Ask the foreign interpreter what it is, and derive the wheel tags it loads."""
    try:
        proc = subprocess.run([*command, "-I", "-c", _ASK], capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmulationError(f"{variable}: {' '.join(command)} did not run: {exc}",
                             hint=_DOCS) from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        raise EmulationError(f"{variable}: {' '.join(command)} failed: {detail[-1]}",
                             hint=_DOCS)
    name, (major, minor), full, abiflags, (libc, libc_version), arch = json.loads(
        proc.stdout.strip().splitlines()[-1])
    if name != "cpython" or arch != machine:
        raise EmulationError(
            f"{variable}: the interpreter there is {name} for {arch}, not CPython for {machine}",
            hint=_DOCS)
    platforms = [f"linux_{arch}"]
    if libc == "glibc":
        glibc = int(libc_version.split(".")[1])
        platforms[:0] = [f"manylinux_2_{v}_{arch}" for v in range(glibc, _OLDEST_GLIBC - 1, -1)]
        platforms.insert(-1, f"manylinux2014_{arch}")
    version = (major, minor)
    abi = f"cp{major}{minor}{abiflags}"
    tags = [*cpython_tags(version, [abi], platforms),
            *compatible_tags(version, f"cp{major}{minor}", platforms)]
    label = f"cpython {full} for {arch} under qemu ({variable})"
    return Interpreter(command, label, frozenset(tags), emulated=True)


def _wine(environ: Mapping[str, str]) -> Interpreter | None:
    value = environ.get(WINE_VARIABLE, "")
    if not value:
        return None
    python = Path(value).resolve()
    python = python if python.is_file() else python / "python.exe"
    if not python.is_file():
        raise EmulationError(
            f"{WINE_VARIABLE}={value}: no python.exe there",
            hint=f"point it at an embeddable CPython for Windows, unpacked; {_DOCS}",
        )
    wine = environ.get(WINE_LOADER_VARIABLE) or shutil.which("wine64") or shutil.which("wine")
    if not wine or not Path(wine).is_file():
        raise EmulationError(
            f"{WINE_VARIABLE} is set, but wine was not found"
            + (f" ({WINE_LOADER_VARIABLE}={wine} is not a file)" if wine else " on PATH"),
            hint=f"install wine or set {WINE_LOADER_VARIABLE} to its loader; {_DOCS}",
        )
    return _describe_windows((str(Path(wine).resolve()), str(python)))


_ASK_WINDOWS = ("import json, platform, sys; print(json.dumps([sys.implementation.name, "
                "list(sys.version_info[:2]), sys.version.split()[0], platform.machine()]))")


@functools.cache
def _describe_windows(command: tuple[str, ...]) -> Interpreter:
    """Ask the Windows interpreter what it is, and derive the wheel tags it loads."""
    try:
        proc = subprocess.run([*command, "-I", "-c", _ASK_WINDOWS], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmulationError(f"{WINE_VARIABLE}: {' '.join(command)} did not run: {exc}",
                             hint=_DOCS) from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        detail = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        raise EmulationError(f"{WINE_VARIABLE}: {' '.join(command)} failed: {detail[-1]}",
                             hint=_DOCS)
    name, (major, minor), full, arch = json.loads(lines[-1])
    platform = _WINDOWS_PLATFORMS.get(arch)
    if name != "cpython" or platform is None:
        raise EmulationError(
            f"{WINE_VARIABLE}: the interpreter there is {name} for {arch}, not CPython",
            hint=_DOCS)
    version = (major, minor)
    tags = [*cpython_tags(version, [f"cp{major}{minor}"], [platform]),
            *compatible_tags(version, f"cp{major}{minor}", [platform])]
    label = f"cpython {full} for {platform} under wine ({WINE_VARIABLE})"
    return Interpreter(command, label, frozenset(tags), emulated=True)
