"""A merged tail used on its own and as part of the longer string, in arm64 code.

When a linker merges ``"grpc"`` into the end of ``".google_grpc"`` and code uses both, the
name's own users must be moved to a standalone copy before the name is patched (a *split*).
On x86-64 a ``lea``'s 32-bit displacement is rewritten; on arm64 the address is built by an
``adrp`` (the page) and an ``add`` (the low 12 bits), and the ``adrp``'s register may serve
other strings of the same page, so moving a use to a copy on another page needs to know
that the page register reaches no other use. That is not done yet: the arm64 build of a
version whose x86-64 build shades is refused, in one line. Found by the platform census
(grpcio 1.84.2, ``grpc/_cython/cygrpc``: its standalone copies of ``"grpc"`` lie on other
pages).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pypi import platform_wheels
from wheelshade import shade
from wheelshade.errors import WheelshadeError
from wheelshade.native.classify import classify

pytestmark = pytest.mark.network

PLATFORM = (("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.13")
MODULE = "grpc/_cython/cygrpc.cpython-313-aarch64-linux-gnu.so"


def _wheel() -> Path:
    folder = platform_wheels(*PLATFORM, "grpcio==1.84.2")
    (path,) = folder.glob("grpcio-1.84.2-*.whl")
    return path


def test_the_merged_tail_is_the_only_conflict() -> None:
    """What refuses the wheel today: exactly one conflict, a merged tail whose own users
    are arm64 ``add`` instructions (so the fix is the arm64 split, nothing else)."""
    with zipfile.ZipFile(_wheel()) as zf:
        info = classify(zf.read(MODULE), MODULE, ["grpc"])
    assert [(r.string, r.verdict) for r in info.suspects] == [(".google_grpc", "conflict")]
    assert "arm64 reference" in info.suspects[0].detail


def test_grpcio_aarch64_is_refused_in_one_line_naming_the_string(tmp_path: Path) -> None:
    # Until arm64 splits exist, a clear refusal, never a wheel that imports the other grpc.
    with pytest.raises(WheelshadeError) as caught:
        shade([], [_wheel()], out_dir=tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message and "cygrpc" in message and "grpc" in message, message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
