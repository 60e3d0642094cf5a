# Sourced by the device scripts: the environment, a `gl` function for the CLI, `up` to wait for the server.
# On the lent GPU machine (no network): the project's dependencies as cp312 wheels in .whl/ (installed to
# /tmp/site), bubblewrap in .dev/wrap/ (both built by wheels.sh). Elsewhere, SKIP_INSTALL=1 PYTHON=.venv/bin/python.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python3}
[ -n "$SKIP_INSTALL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PATH=$PWD/.dev/wrap:$PATH COLUMNS=110
gl() { $PYTHON -c 'import sys; from gpulease.cli import main; sys.argv[0]="gpulease"; main()' "$@"; }
PY=$($PYTHON -c 'import sys; print(sys.executable)')
export GPULEASE_TELEMETRY_INTERVAL_S=2 GPULEASE_DATA_DIR=/tmp/gl GPULEASE_SANDBOX_RO_PATHS="[\"$($PYTHON -c 'import sys; print(sys.prefix)')\"]"
P=${PORT:-8766}; export GPULEASE_API_URL=http://127.0.0.1:$P
mkdir -p /tmp/gl && chmod 755 /tmp/gl
up() { for i in $(seq 90); do curl -sf $GPULEASE_API_URL/healthz >/dev/null && break; sleep 1; done; echo "server up after ${i}s"; }
