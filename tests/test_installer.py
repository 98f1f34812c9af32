"""Every output also installs with pypa/installer (not only pip) and imports from there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from helpers import Venv
from wheelshade import shade


def test_outputs_install_with_installer(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    shade(
        [fixture_wheels["oldapp"]],
        [fixture_wheels["greet1"], fixture_wheels["colors1"]],
        out_dir=out,
    )
    env = Venv.create(tmp_path / "env")
    scheme = json.loads(
        subprocess.run(
            [
                str(env.python),
                "-c",
                "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    destination = SchemeDictionaryDestination(
        {
            **{k: scheme[k] for k in ("purelib", "platlib", "scripts", "data")},
            "headers": str(Path(scheme["include"]) / "site"),
        },
        interpreter=str(env.python),
        script_kind="posix",
    )
    for whl in sorted(out.glob("*.whl")):
        with WheelFile.open(whl) as source:
            source.validate_record()
            install(source, destination, {"INSTALLER": b"installer"})
    data = env.json("import json, oldapp; print(json.dumps(oldapp.report()['hello']))")
    assert data == "hello oldapp in red (colors 1) (greet 1)"
