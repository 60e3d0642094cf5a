#!/bin/bash
# Builds what the device scripts carry to a lent GPU machine (Python 3.12, no network, 64 MiB for the whole tree):
# the project's runtime dependencies as cp312 wheels at the venv's versions in .whl/ (wordfreq's word lists
# trimmed to English and Chinese, the only ones the matcher reads: 55 MiB -> 6 MiB), and this machine's
# bubblewrap in .dev/wrap/. Then: run(carry=[".whl", ".dev"], command="... OUT=$OUT benchmarks/device/gpu_e2e.sh").
set -euo pipefail
cd "$(dirname "$0")/../.."
skip='^(ray|playwright|schemathesis|mypy|ruff|matplotlib|hypothesis|import-linter|pytest-xdist|numpy|pandas|grpcio|opencensus|py-spy|nvidia|virtualenv|pyarrow|fonttools|kiwisolver|pillow|contourpy|smart.open|google|protobuf|jsonschema.rs|grimp|librt|ast.serialize)'
.venv/bin/python -m pip freeze | grep -v -e '^-e' -e gpulease | grep -viE "$skip" > /tmp/device-reqs.txt
rm -rf .whl && mkdir -p .whl .dev/wrap
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 -d .whl -r /tmp/device-reqs.txt nvidia-ml-py 2>&1 | grep -v "is ignored" || true
wf=$(ls .whl/wordfreq-*.whl); tmp=$(mktemp -d)
(cd "$tmp" && unzip -q "$OLDPWD/$wf" && find wordfreq/data -type f ! -name '*_en.*' ! -name '*_zh*' ! -name 'jieba*' -delete \
    && python3 -c "
import csv, glob, os
rec = glob.glob('wordfreq-*.dist-info/RECORD')[0]
rows = [r for r in csv.reader(open(rec)) if os.path.exists(r[0])]
csv.writer(open(rec, 'w', newline='')).writerows(rows)" && rm "$OLDPWD/$wf" && zip -q -r "$OLDPWD/$wf" .)
rm -rf "$tmp"
cp "$(command -v bwrap)" .dev/wrap/
du -sh .whl .dev
