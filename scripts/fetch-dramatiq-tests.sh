#!/usr/bin/env bash
# Unpack the test modules of the installed Dramatiq, from its source distribution on the
# package index, into upstream-tests/dramatiq-<version>/ (git ignores it), with its licence
# (LGPL-3.0-or-later, COPYING and COPYING.LESSER). The suite runs them against the
# project's brokers (tests/test_dramatiq_contract.py). Does nothing when they are there.
# PYTHON: the virtualenv's interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
version="$("$PYTHON" -c 'from importlib.metadata import version; print(version("dramatiq"))')"
target="upstream-tests/dramatiq-$version"
[ -f "$target/tests/test_actors.py" ] && exit 0

download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
echo "setup: fetching Dramatiq $version's tests into $target"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$download" "dramatiq==$version"
tar -xzf "$download/dramatiq-$version.tar.gz" -C "$download"
unpacked="$download/dramatiq-$version"
[ -f "$unpacked/tests/test_actors.py" ] || {
    echo "setup: Dramatiq $version's source distribution has no tests/" >&2
    exit 1
}
rm -rf "$target"
mkdir -p "$target.partial"
cp -r "$unpacked/tests" "$unpacked/COPYING" "$unpacked/COPYING.LESSER" "$unpacked/PKG-INFO" \
    "$target.partial/"
mv "$target.partial" "$target"
