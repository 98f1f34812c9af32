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

echo "== shading bizbaz against the flask 0.12.4 stack"
start=$(date +%s.%N)
# markupsafe 2.0.1's C speed-up imports "markupsafe" by name, which would load the
# *unshaded* markupsafe 3; it has a pure-Python fallback, so it is left out.
"$venv/bin/wheelshade" shade "$work"/dist/bizbaz-0.1-*.whl \
    --dep flask==0.12.4 --dep werkzeug==0.16.1 --dep jinja2==2.11.3 \
    --dep markupsafe==2.0.1 --dep itsdangerous==1.1.0 \
    --drop 'markupsafe/_speedups*' \
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
