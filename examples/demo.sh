#!/usr/bin/env bash
# The seed demo: shade bizbaz against the Flask 0.12.4 stack and run it beside Flask 3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
work=$here/.demo
rm -rf "$work"
mkdir -p "$work/dist"

echo "== building the demo apps"
# Built from a copy: setuptools leaves build/ and .egg-info/ beside the sources.
mkdir -p "$work/src"
cp -r "$here/examples/bizbaz" "$here/examples/foobar" "$work/src/"
"$venv/bin/python" -m pip wheel --quiet --no-deps -w "$work/dist" \
    "$work/src/bizbaz" "$work/src/foobar"

echo "== shading bizbaz against flask 0.12.4 and the stack it needs, resolved as of 2020-02-05"
start=$(date +%s.%N)
# Only flask is named: --with-deps resolves its closure as of a date when flask 0.12 still
# worked with its dependencies' latest releases, and shades each member that the target
# (flask>=3) would otherwise hold in a newer version.
# The date cutoff needs an index that serves upload times; PIP_CONFIG_FILE=/dev/null keeps
# a local mirror from pip.conf (which may not) out of the resolution.
# markupsafe's C speed-up imports "markupsafe" by name: wheelshade gives markupsafe a
# same-length name and patches the compiled module to it (--naming auto).
PIP_CONFIG_FILE=/dev/null "$venv/bin/wheelshade" shade "$work"/dist/bizbaz-0.1-*.whl \
    --dep flask==0.12.4 --with-deps --uploaded-prior-to 2020-02-05T00:00:00Z \
    --target-requirements "$here/examples/target-requirements.txt" \
    -o "$work/wheelhouse"
end=$(date +%s.%N)
echo "shade step took $(python3 -c "print(f'{$end - $start:.1f}')") s"

echo "== installing everything into one fresh venv, beside flask 3"
python3 -m venv "$work/env"
"$work/env/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$work"/wheelhouse/*.whl "$work"/dist/foobar-0.1-*.whl 'flask>=3'
"$work/env/bin/python" -m pip check --disable-pip-version-check

echo "== running both apps in one interpreter"
"$work/env/bin/python" "$here/examples/run_both.py"

echo
echo "== the same as one self-contained wheel: --bundle (e.g. to publish on PyPI, docs/publishing.md)"
PIP_CONFIG_FILE=/dev/null "$venv/bin/wheelshade" shade "$work"/dist/bizbaz-0.1-*.whl \
    --dep flask==0.12.4 --with-deps --uploaded-prior-to 2020-02-05T00:00:00Z \
    --target-requirements "$here/examples/target-requirements.txt" \
    --bundle --quiet -o "$work/bundle"
ls "$work/bundle"

echo "== installing the bundle with uv into a fresh venv, beside foobar and flask 3"
python3 -m venv --without-pip "$work/env-bundle"
uv=("$venv/bin/uv")
[ -x "${uv[0]}" ] || uv=("$venv/bin/python" -m uv)
"${uv[@]}" pip install --quiet --python "$work/env-bundle/bin/python" \
    "$work"/bundle/*.whl "$work"/dist/foobar-0.1-*.whl 'flask>=3'
"$venv/bin/python" -m pip --python "$work/env-bundle/bin/python" check \
    --disable-pip-version-check
"$work/env-bundle/bin/python" "$here/examples/run_both.py"

echo "== what the bundle declares"
"$venv/bin/python" - "$work"/bundle/*.whl <<'PY'
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    info = next(n.split("/")[0] for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    meta = zf.read(f"{info}/METADATA").decode()
    sbom = json.loads(zf.read(f"{info}/sboms/wheelshade.cdx.json"))
lines = meta.splitlines()
if not any(line.startswith("Requires-Dist:") for line in lines):
    print("Requires-Dist: none (every requirement of bizbaz and its stack is inside)")
for line in lines:
    if line.startswith(("Requires-Dist:", "Requires-Python:", "License-File:", "License-Exp")):
        print(line)
print("SBOM components:")
for c in sbom["components"]:
    print(f"  {c['purl']}  sha256:{c['hashes'][0]['content'][:16]}...")
PY
