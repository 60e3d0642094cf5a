#!/bin/bash
# Through the doors on a machine with an NVIDIA GPU: `gpulease demo`, a node of one H100 added as an operator, and
# as its customer a lease booked, a CUDA run on it (what it sees), a detached run holding the GPU, the lease ended
# (the run stopped, the GPU's memory freed), the lease's events. docs/benchmarks.md, "On a real GPU", has a run.
#
#   OUT=/tmp/out benchmarks/device/gpu_e2e.sh
# (setup.sh: what it needs on the lent machine and elsewhere)
source "$(dirname "$0")/setup.sh"
gl demo --port $P > $OUT/demo.log 2>&1 &
trap "pkill -f \"demo --port $P\"" EXIT  # the server, not only the subshell that started it
up
OP=$(grep -o "gl_[A-Za-z0-9_-]*" $OUT/demo.log | sed -n 1p); CU=$(grep -o "gl_[A-Za-z0-9_-]*" $OUT/demo.log | sed -n 3p)
set -x
GPULEASE_API_KEY=$OP gl nodes add lab gpu dev-h100 H100-80GB --gpu-count 1
GPULEASE_API_KEY=$CU gl leases create H100-80GB 1 --duration 1h
LID=$(GPULEASE_API_KEY=$CU gl leases list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['id'])")
GPULEASE_API_KEY=$CU gl leases show $LID
T0=$(date +%s.%N)
GPULEASE_API_KEY=$CU gl run $LID -- $PY -c "import os,glob,torch; x=torch.ones(4096,4096,device='cuda'); print('CUDA_VISIBLE_DEVICES', os.environ['CUDA_VISIBLE_DEVICES'], 'nodes', sorted(glob.glob('/dev/nvidia[0-9]*')), 'count', torch.cuda.device_count(), torch.cuda.get_device_name(0), 'sum', float((x@x).sum()))"
echo "run exit $? in $(python3 -c "import time;print(round(time.time()-$T0,2))") s"
GPULEASE_API_KEY=$CU gl run $LID --detach -- $PY -c "import time,torch; x=torch.empty(6*1024**3,dtype=torch.uint8,device='cuda'); y=torch.randn(8192,8192,device='cuda'); print('holding', flush=True)
while True: y=y@y; y/=y.norm(); torch.cuda.synchronize()"
sleep 12
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
curl -s -H "Authorization: Bearer $OP" $GPULEASE_API_URL/api/v1/telemetry | head -c 1500; echo
GPULEASE_API_KEY=$CU gl leases show $LID
curl -s -H "Authorization: Bearer $CU" "$GPULEASE_API_URL/api/v1/leases/$LID/gpu-usage?points=6"; echo
GPULEASE_API_KEY=$CU gl leases end $LID
sleep 4
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
GPULEASE_API_KEY=$CU gl runs $LID
GPULEASE_API_KEY=$CU gl leases show $LID
GPULEASE_API_KEY=$CU gl leases events $LID
