#!/bin/bash
# api_load.py (SQLite) and booking_cpu.py on two cores of a lent machine that nothing else uses: the figures of
# docs/benchmarks.md's throughput sections on a quiet 2-core slice (taskset), beside the shared container's noisy ones.
# The lent machine has no PostgreSQL server, so SQLite only.
#
#   OUT=/tmp/out benchmarks/device/api_load_2cores.sh        # after wheels.sh here; carry .whl and .dev
source "$(dirname "$0")/setup.sh"
# api_load.py starts the `gpulease` beside its Python, else the one on the PATH: a wrapper of the CLI there.
mkdir -p /tmp/v/bin && printf '#!/bin/sh\nexec %s -c "import sys; from gpulease.cli import main; sys.argv[0]=\\"gpulease\\"; main()" "$@"\n' \
    "$(command -v "$PYTHON")" > /tmp/v/bin/gpulease && chmod +x /tmp/v/bin/gpulease
export PATH=/tmp/v/bin:$PATH
lscpu | grep -E "Model name|^CPU\(s\)"
CORES=${CORES:-2,3}
for i in 1 2; do
    taskset -c "$CORES" $PYTHON benchmarks/api_load.py --store sqlite --clients 32 --seconds ${SECONDS_EACH:-20} 2>&1 | grep -v "^set-up" | head -12
done
taskset -c "${CORES%%,*}" $PYTHON benchmarks/booking_cpu.py --store sqlite --cycles 600 --batches 6 2>&1 | tail -1
