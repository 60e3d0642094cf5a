#!/bin/bash
# On a machine with an NVIDIA GPU: a live GPU run survives a kill -9 of the server (`gpulease demo`); restarted
# (`gpulease serve` on the same data folder) the server re-attaches to it, and the lease's end still stops it.
#
#   OUT=/tmp/out benchmarks/device/gpu_restart.sh     # as gpu_e2e.sh: SKIP_INSTALL=1 PYTHON=... off the lent machine; PORT=8767 beside a running demo
source "$(dirname "$0")/setup.sh"
gl demo --port $P > $OUT/demo.log 2>&1 & SERVER=$!
up
OP=$(grep -o "gl_[A-Za-z0-9_-]*" $OUT/demo.log | sed -n 1p); CU=$(grep -o "gl_[A-Za-z0-9_-]*" $OUT/demo.log | sed -n 3p)
GPULEASE_API_KEY=$OP gl nodes add lab gpu dev-h100 H100-80GB --gpu-count 1 >/dev/null
GPULEASE_API_KEY=$CU gl leases create H100-80GB 1 --duration 1h
LID=$(GPULEASE_API_KEY=$CU gl leases list --json | $PYTHON -c "import json,sys; print(json.load(sys.stdin)[-1]['id'])")
GPULEASE_API_KEY=$CU gl run $LID --detach -- $PY -c "import time,torch; x=torch.empty(5*1024**3,dtype=torch.uint8,device='cuda'); y=torch.randn(4096,4096,device='cuda'); n=0
while True:
    y=y@y; y/=y.norm(); torch.cuda.synchronize(); n+=1
    if n % 2000 == 0: print('step', n, flush=True)"
sleep 15
echo "before the kill:"; nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
kill -9 $(pgrep -f "demo --port $P") $SERVER 2>/dev/null; sleep 1
echo "server killed (kill -9); GPU meanwhile:"; nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
sleep 5
gl serve --port $P > $OUT/serve.log 2>&1 &
up
GPULEASE_API_KEY=$CU gl runs $LID
sleep 5; echo "after the restart:"; nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
GPULEASE_API_KEY=$CU gl logs $LID $(GPULEASE_API_KEY=$CU gl runs $LID --json | $PYTHON -c "import json,sys; print(json.load(sys.stdin)[-1]['id'])") | tail -3
GPULEASE_API_KEY=$CU gl leases show $LID | tail -2
GPULEASE_API_KEY=$CU gl leases end $LID
sleep 4; echo "after the end:"; nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
GPULEASE_API_KEY=$CU gl runs $LID
grep -i "reattach\|re-attach\|supervis" $OUT/serve.log | head -5
pkill -f "serve --port $P"
