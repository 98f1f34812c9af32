"""Strings of compiled code are renamed with the same evidence as Python strings: a string
that starts with a shaded name and goes on as a dotted path is a module path only when the
set shows it to be one (a module, a name bound at module level in one, or anything inside a
compiled module). Option keys named after the package (grpc's channel arguments,
``"grpc.max_receive_message_length"``) keep their bytes: Python callers pass them as they are
(the string pass leaves them too), and renamed in the core, every option would be silently
ignored by the shaded copy."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from helpers import Venv, build_fixture
from pypi import wheels
from wheelshade import shade
from wheelshade.findings import Code
from wheelshade.native.classify import classify
from wheelshade.proof import ModuleProof
from wheelshade.rewrite.bound import set_proof
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.summary import Role, summarise

KEYS = ["coptpkg.configure.strict", "coptpkg.max_size"]


def _core(wheel: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        (so,) = [n for n in archive.namelist() if n.endswith(".so")]
        return so, archive.read(so)


def test_the_native_rule() -> None:
    proof = ModuleProof(
        frozenset({"pkg", "pkg.sub", "pkg._ext", "_cmod"}),
        {"pkg": frozenset({"run", "sub"}), "pkg._ext": frozenset({"Public"})},
        frozenset({"pkg._ext", "_cmod"}),
    )
    # A compiled top-level module's own prefix: cffi checks its types' names by it.
    assert proof.native("_cmod.") and proof.native("_cmod.CType")
    assert proof.native("pkg") and proof.native("pkg.sub") and proof.native("pkg.run")
    assert proof.native("pkg._ext.Internal.method")  # compiled: its own names, any depth
    assert proof.native("pkg.sub.")  # a package prefix of a module of the set
    assert not proof.native("pkg.max_size")  # bound nowhere
    assert not proof.native("pkg.run.strict")  # below a function of a module with sources
    assert not proof.native("pkg.")  # a top-level prefix may prefix option keys as well
    assert not proof.native("pkg.v1.Request")  # a protobuf message of no module here


def test_option_keys_keep_their_bytes_module_paths_are_renamed(tmp_path: Path) -> None:
    wheel = build_fixture("copts", tmp_path / "dist", tmp_path / "src")
    so, data = _core(wheel)
    with WheelReader(wheel) as reader:
        proof = set_proof([summarise(reader, Role.DEP)])
    info = classify(data, so, ["coptpkg"], proof)
    renamed = sorted(r.string for r in info.references if r.kind == "string")
    assert renamed == ["coptpkg", "coptpkg._CAPI", "coptpkg._core.Options", "coptpkg.helpers"]
    (capsule,) = [r.detail for r in info.references if r.string == "coptpkg._CAPI"]
    assert capsule == "passed to PyCapsule_Import, PyCapsule_New"
    assert sorted(r.string for r in info.embedded if r.verdict == "unproven") == KEYS
    assert info.suspects == ()
    # Without the set's evidence every dotted string is taken for a module path.
    blind = classify(data, so, ["coptpkg"])
    assert sorted(r.string for r in blind.references if r.kind == "string") == sorted(
        [*renamed, *KEYS])

    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["coptpkg"]
    (finding,) = [f for f in report.findings if f.code is Code.UNPROVEN_MODULE_PATH]
    assert finding.path == so and "2 string(s) in compiled code" in finding.message
    assert all(repr(k) in finding.message for k in KEYS)
    _, patched = _core(report.output)
    assert all(k.encode() in patched for k in KEYS)

    env = Venv.create(tmp_path / "env")
    env.install(wheel, report.output)
    options = {k: i for i, k in enumerate(KEYS)} | {"coptpkg.unknown": 9}
    data_out = env.json(
        "import json, sys\n"
        f"import {new}\n"
        f"alone = sorted(m for m in sys.modules if m.split('.')[0] == 'coptpkg')\n"
        "import coptpkg\n"
        f"print(json.dumps([alone, {new}.configure({options!r}), coptpkg.configure({options!r}),"
        f" {new}.helpers.__name__, {new}.Options.__module__, coptpkg.Options.__module__,"
        f" {new}.capi_ok(), coptpkg.capi_ok()]))"
    )
    taken = {k: i for i, k in enumerate(KEYS)}
    assert data_out == [[], taken, taken, f"{new}.helpers", f"{new}._core", "coptpkg._core",
                        True, True]


#: A server and a call through each grpc in one interpreter; the server takes messages of at
#: most 64 bytes (a channel argument, ``"grpc.max_receive_message_length"``, passed from
#: Python and looked up by the C core): a larger one must fail as RESOURCE_EXHAUSTED.
GRPC_CALLS = """
from concurrent import futures
rows = []
for m in MODULES:
    server = m.server(futures.ThreadPoolExecutor(2),
                      options=[("grpc.max_receive_message_length", 64)])
    echo = m.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers((m.method_handlers_generic_handler("svc", {"Echo": echo}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with m.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/svc/Echo")
        small = call(b"hi", timeout=20).decode()
        try:
            call(b"x" * 1000, timeout=20)
            large = "accepted"
        except m.RpcError as exc:
            large = exc.code().name
    server.stop(None)
    rows.append([m.__version__, m._cython.cygrpc.__name__, small, large])
"""


@pytest.mark.network
def test_grpcio_beside_its_next_release_keeps_its_channel_options(tmp_path: Path) -> None:
    """grpcio's core keeps ~700 channel-argument keys (``"grpc.max_receive_message_length"``)
    beside its module paths; they keep their bytes, so options passed from Python still
    reach the shaded core, and the keys it compares inline no longer refuse the wheel."""
    folder = wheels("grpcio==1.84.2", "grpcio==1.85.3", "typing-extensions==4.16.0")
    (old,) = folder.glob("grpcio-1.84.2-cp311-*.whl")
    result = shade([], [old], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["grpc"]
    (finding,) = [f for f in report.findings if f.code is Code.UNPROVEN_MODULE_PATH
                  and f.path.endswith(".so")]
    assert "string(s) in compiled code look like module paths" in finding.message
    env = Venv.create(tmp_path / "env")
    env.install(report.output, *folder.glob("grpcio-1.85.3-cp311-*.whl"),
                *folder.glob("typing_extensions-4.16.0-*.whl"))
    alone = env.json(f"import json, sys\nimport {new}\nMODULES = [{new}]\n{GRPC_CALLS}"
                     "rows.append(sorted(k for k in sys.modules if k.split('.')[0] == 'grpc'))\n"
                     "print(json.dumps(rows))")
    shaded_row = ["1.84.2", f"{new}._cython.cygrpc", "hi", "RESOURCE_EXHAUSTED"]
    assert alone == [shaded_row, []]
    both = env.json(f"import json, grpc, {new}\nMODULES = [{new}, grpc]\n{GRPC_CALLS}"
                    "print(json.dumps(rows))")
    assert both == [shaded_row, ["1.85.3", "grpc._cython.cygrpc", "hi", "RESOURCE_EXHAUSTED"]]


def test_a_path_through_the_files_own_module_name_is_its_qualified_name() -> None:
    """A Cython module built as ``pkg.clib._ext`` and installed as top-level ``_ext``
    spells that full name (and its types' ``pkg.clib._ext.Parser``): a module path under
    ``pkg`` though no module ``pkg.clib`` ships, renamed with ``pkg``. An option key of the
    same shape stays."""
    from test_binaries import make_elf

    rodata = b"\0pkg.clib._ext\0pkg.clib._ext.Parser\0pkg.clib.option\0" + bytes(8)
    data = make_elf(64, "little", rodata, {"PyInit__ext": True}, [])
    proof = ModuleProof(frozenset({"pkg", "_ext"}), {"pkg": frozenset()}, frozenset({"_ext"}))
    info = classify(data, "_ext.so", ["pkg", "_ext"], proof)
    assert sorted(r.string for r in info.references if r.name == "pkg") == [
        "pkg.clib._ext", "pkg.clib._ext.Parser"]
    assert [r.string for r in info.embedded if r.verdict == "unproven"] == ["pkg.clib.option"]
