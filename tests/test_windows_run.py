"""Windows amd64 Cython wheels shaded here and run under wine beside their next release.

Both were refused before PE reference analysis (their ``"init <module>"`` labels and merged
names needed it); the shaded module must load its patched ``.pyd`` with every original name
blocked, and the next release, unshaded, load its own in the same interpreter.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

import windows
from pypi import platform_wheels
from wheelshade import shade
from wheelshade.native import emulation, loadcheck
from wheelshade.native.classify import classify

pytestmark = pytest.mark.network

PLATFORM = (("win_amd64",), "3.13")


def _block(*names: str) -> str:
    return (
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {names!r}:\n"
        "            raise ImportError('original imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )


def _one(folder: Path, prefix: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return path


def _shaded(tmp_path: Path, req: str, after: str, names: list[str]) -> tuple[dict[str, str], Path]:
    """The mapping of ``req``'s Windows wheel shaded, and a folder with it and ``after``'s
    wheel unpacked side by side; its patched ``.pyd`` has no suspect left."""
    project = req.partition("==")[0]
    folder = platform_wheels(*PLATFORM, req, after)
    result = shade([], [_one(folder, req.replace("==", "-") + "-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    with zipfile.ZipFile(report.output) as zf:
        (pyd,) = [n for n in zf.namelist() if n.endswith(".pyd")]
        info = classify(zf.read(pyd), pyd, [*names, *report.mapping.values()])
    assert info.machine == "x86_64" and info.suspects == ()
    site = tmp_path / "site"
    for wheel in (report.output, _one(folder, f"{project}-{after.partition('==')[2]}-")):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    return report.mapping, site


def _run(code: str, site: Path) -> object:
    proc = windows.python("import json, sys\n" + code, site)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_msgpack_windows_runs_beside_its_next_release(tmp_path: Path) -> None:
    mapping, site = _shaded(tmp_path, "msgpack==1.1.0", "msgpack==1.1.1", ["msgpack"])
    new = mapping["msgpack"]
    out = _run(
        f"{_block('msgpack')}import {new} as m\nfrom {new} import _cmsgpack as c\n"
        "data = m.packb({'a': [1, 2.5, 'x'], 'b': b'\\x00'})\n"
        "out = [c.__name__, c.__file__.endswith('.pyd'), m.Packer is c.Packer,\n"
        "       m.Packer.__module__, repr(m.unpackb(data)), m.version,\n"
        "       sorted(k for k in sys.modules if k.startswith('msgpack'))]\n"
        "sys.meta_path.pop(0)\n"
        "import msgpack\nfrom msgpack import _cmsgpack as d\n"
        "out += [d.__name__, msgpack.Packer is d.Packer, msgpack.Packer is m.Packer,\n"
        "        msgpack.version, repr(msgpack.unpackb(data)),\n"
        "        repr(m.unpackb(msgpack.packb([1])))]\n"
        "print(json.dumps(out))\n", site)
    assert out == [
        f"{new}._cmsgpack", True, True, f"{new}._cmsgpack", "{'a': [1, 2.5, 'x'], 'b': b'\\x00'}",
        [1, 1, 0], [],
        "msgpack._cmsgpack", True, False, [1, 1, 1], "{'a': [1, 2.5, 'x'], 'b': b'\\x00'}", "[1]",
    ]


def test_pyyaml_windows_runs_beside_its_next_release(tmp_path: Path) -> None:
    """Two top-level names (``yaml`` and the ``_yaml`` shim) shaded together; the C
    loader and dumper (``yaml._yaml``, a Cython module) are what ``CSafeLoader`` uses."""
    mapping, site = _shaded(tmp_path, "pyyaml==6.0.2", "pyyaml==6.0.3", ["yaml", "_yaml"])
    new = mapping["yaml"]
    work = ("[y.__version__, y.CSafeLoader.__module__, y._yaml.__file__.endswith('.pyd'),\n"
            "       y.load('a: [1, x]', Loader=y.CSafeLoader), y.dump({'k': 1}, Dumper=y.CDumper)]")
    out = _run(
        f"{_block('yaml', '_yaml')}import {new} as y\n"
        f"out = {work}\n"
        "out.append(sorted(k for k in sys.modules if k.partition('.')[0] in ('yaml', '_yaml')))\n"
        "sys.meta_path.pop(0)\n"
        f"import yaml as y\nout += {work}\n"
        "print(json.dumps(out))\n", site)
    assert out == [
        "6.0.2", f"{new}.cyaml", True, {"a": [1, "x"]}, "k: 1\n", [],
        "6.0.3", "yaml.cyaml", True, {"a": [1, "x"]}, "k: 1\n",
    ]


def _configure_wine(monkeypatch: pytest.MonkeyPatch) -> None:
    env = windows.wine_env(windows.wine())
    for name in ("WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES", "WINESERVER", "WINEDLLPATH",
                 "LD_LIBRARY_PATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv(emulation.WINE_VARIABLE, str(windows.embedded().parent))
    monkeypatch.setenv(emulation.WINE_LOADER_VARIABLE, env["WINELOADER"])


def test_load_check_under_wine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With WHEELSHADE_WINE set, a shading run loads its patched ``.pyd`` modules in the
    Windows CPython under wine, with the original names blocked, and says so; a folder
    without python.exe there is an error, not a silent skip."""
    folder = platform_wheels(*PLATFORM, "msgpack==1.1.0", "markupsafe==3.0.2")
    _configure_wine(monkeypatch)
    wheels = [_one(folder, "msgpack-1.1.0-"), _one(folder, "markupsafe-3.0.2-")]
    result = shade([], wheels, out_dir=tmp_path / "out")
    loaded = re.compile(r"2 patched compiled module\(s\) loaded by cpython 3\.13\.\d+ for "
                        r"win_amd64 under wine \(WHEELSHADE_WINE\), reaching no original name")
    assert [n for n in result.notes if loaded.fullmatch(n)]
    assert not any("not load-checked" in n for n in result.notes)
    monkeypatch.setenv(emulation.WINE_VARIABLE, str(tmp_path))
    with pytest.raises(emulation.EmulationError, match=r"^WHEELSHADE_WINE=.*: no python\.exe"):
        shade([], wheels[:1], out_dir=tmp_path / "again")


def test_load_check_under_wine_catches_a_broken_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patched module that no longer loads fails the run (its init export renamed to
    a name the loader does not look for stands in for a bad patch)."""
    folder = platform_wheels(*PLATFORM, "msgpack==1.1.0")
    source = _one(folder, "msgpack-1.1.0-")
    result = shade([], [source], out_dir=tmp_path / "out")
    (report,) = result.wheels
    _configure_wine(monkeypatch)
    broken = tmp_path / "broken" / report.output.name
    broken.parent.mkdir()
    with zipfile.ZipFile(report.output) as old, zipfile.ZipFile(broken, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith(".pyd"):
                data = data.replace(b"PyInit__cmsgpack\0", b"PyInit__cmsgpacx\0")
            new.writestr(item, data)
    new_name = report.mapping["msgpack"]
    target = loadcheck.Target("msgpack._cmsgpack", f"{new_name}._cmsgpack", "pyd",
                              broken.name, "x86_64")
    with pytest.raises(loadcheck.LoadCheckError, match="loads unshaded but not after shading"):
        loadcheck.check([broken], [source], [target], ["msgpack"])
