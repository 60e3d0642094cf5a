#!/usr/bin/env bash
# A local Slurm cluster for the Slurm backend's tests and benchmarks/vs_slurm.py (idempotent).
#
# Installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server when missing, then starts, all under
# $GPULEASE_SLURM_DIR and on 127.0.0.1 only (nothing in /etc is touched, no system service is used):
#   munged     on its own socket and key
#   mariadbd   its own data directory, for slurmdbd (accounting: sacct, associations)
#   slurmdbd   accounting with AccountingStorageEnforce=associations, so a job's --account is checked
#   slurmctld  select/cons_tres (CR_Core_Memory), GresTypes=gpu, cgroups off (proctrack/pgid), task/affinity
#              (runs are bound to the cores Slurm gives them, e.g. a CPU lease's; no cgroup confinement)
#   N slurmd   `slurmd -N NAME`, each with NodeAddr=127.0.0.1 and its own Port
# and waits until every node is idle. Running it again while the cluster is up does nothing.
# Stop it with .ci/slurm-down.sh. Prints the line to export at the end.
#
#   GPULEASE_SLURM_DIR    where config, state, logs and the fake GPUs live (/tmp/gpulease-slurm)
#   GPULEASE_SLURM_NODES  how many slurmd (4)          GPULEASE_SLURM_GPUS  GPUs per node (8)
#   GPULEASE_SLURM_NODE_PREFIX  node names are PREFIX01, PREFIX02, ... (slurm-n)
#   GPULEASE_SLURM_CPUS   CPUs each node declares (16)
#   GPULEASE_SLURM_TYPED_GPUS  1: every GPU is its own GRES type (default); 0: plain gpu:N
#   GPULEASE_SLURM_TASK_PLUGIN  task/affinity (default; binds tasks to their cores) or task/none
#
# Fake GPUs: every GPU is a device file in gres.conf (AutoDetect=off) and, by default, its own GRES type
# idx0..idx7, so a job can ask for exact GPU indices (--gres=gpu:idx3:1,gpu:idx5:1); see docs/slurm.md.
set -euo pipefail

DIR=${GPULEASE_SLURM_DIR:-/tmp/gpulease-slurm}
NODES=${GPULEASE_SLURM_NODES:-4}
GPUS=${GPULEASE_SLURM_GPUS:-8}
PREFIX=${GPULEASE_SLURM_NODE_PREFIX:-slurm-n}
CPUS=${GPULEASE_SLURM_CPUS:-16}
TYPED=${GPULEASE_SLURM_TYPED_GPUS:-1}
TASK_PLUGIN=${GPULEASE_SLURM_TASK_PLUGIN:-task/affinity}
CONF=$DIR/slurm.conf
SHAPE="$NODES $GPUS $PREFIX $CPUS $TYPED"
export SLURM_CONF=$CONF TZ=UTC

node_names() { for i in $(seq 1 "$NODES"); do printf '%s%02d\n' "$PREFIX" "$i"; done; }

cluster_up() {
  [ -f "$CONF" ] && [ "$(cat "$DIR/shape" 2>/dev/null)" = "$SHAPE" ] || return 1
  timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  local states
  states=$(timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null | sort -u) || return 1
  [ "$(echo "$states" | grep -c -E ' (idle|mixed|allocated|reserved)$')" = "$NODES" ]
}

if cluster_up; then
  echo "slurm: already up ($CONF)"
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

missing=()
command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
command -v slurmdbd >/dev/null 2>&1 || missing+=(slurmdbd)
command -v munged >/dev/null 2>&1 || missing+=(munge)
command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "slurm: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# Whatever is left of an earlier cluster in $DIR (a crash, a different shape) goes first.
"$(dirname "$0")/slurm-down.sh" >/dev/null 2>&1 || true
rm -rf "$DIR/state" "$DIR/spool" "$DIR/mysql"

mkdir -p "$DIR"/{state,spool,log,munge,dev}
chmod 755 "$DIR/munge"  # munged wants its socket directory searchable by all
if [ ! -s "$DIR/munge/munge.key" ]; then
  dd if=/dev/urandom bs=1 count=1024 of="$DIR/munge/munge.key" 2>/dev/null
  chmod 400 "$DIR/munge/munge.key"
fi
# Fake GPUs: character devices that are /dev/null (1,3), so slurmd accepts them as devices and sets
# CUDA_VISIBLE_DEVICES from the indices it allocates; plain files where mknod is not allowed (then
# slurmd logs "not a valid character or block device" and leaves CUDA_VISIBLE_DEVICES unset).
for g in $(seq 0 $((GPUS - 1))); do
  [ -e "$DIR/dev/nvidia$g" ] || mknod "$DIR/dev/nvidia$g" c 1 3 2>/dev/null || : > "$DIR/dev/nvidia$g"
done

free_ports() {  # N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r -a PORTS <<< "$(free_ports $((NODES + 3)))"
CTLD_PORT=${PORTS[0]} DBD_PORT=${PORTS[1]} DB_PORT=${PORTS[2]}

gres_types="gpu:$GPUS"
if [ "$TYPED" = 1 ]; then
  gres_types=""
  for g in $(seq 0 $((GPUS - 1))); do gres_types+="${gres_types:+,}gpu:idx$g:1"; done
fi

{
  cat <<CONF
# Written by .ci/slurm-up.sh: a one-host test cluster for gpulease. Not for production.
ClusterName=gpulease
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
MailProg=/bin/true
# No cgroups in a container: process groups track jobs, no device confinement. task/affinity binds each
# task to the cores Slurm allocated it (sched_setaffinity, which a task could widen again: cgroups confine).
ProctrackType=proctrack/pgid
TaskPlugin=$TASK_PLUGIN
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
# Cores and memory are both consumed, so a CPU lease's --mem is held for it; jobs that ask for no memory
# get DefMemPerCPU per CPU (16 CPUs x 1000 MB fit RealMemory).
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Nodes here declare more CPUs than the host has.
SlurmdParameters=config_overrides
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# slurmdbd connections take their MUNGE socket from here, not from AuthInfo
AccountingStoragePass=$DIR/munge/munge.sock
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
CONF
  i=3
  for name in $(node_names); do
    echo "NodeName=$name NodeAddr=127.0.0.1 NodeHostname=localhost Port=${PORTS[$i]} CPUs=$CPUS RealMemory=64000 Gres=$gres_types State=UNKNOWN"
    i=$((i + 1))
  done
  echo "PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} > "$CONF"

{
  echo "AutoDetect=off"
  if [ "$TYPED" = 1 ]; then
    for g in $(seq 0 $((GPUS - 1))); do echo "Name=gpu Type=idx$g File=$DIR/dev/nvidia$g"; done
  else
    echo "Name=gpu File=$DIR/dev/nvidia[0-$((GPUS - 1))]"
  fi
} > "$DIR/gres.conf"

cat > "$DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.sock
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
CONF
chmod 600 "$DIR/slurmdbd.conf"
echo "$SHAPE" > "$DIR/shape"

munged --socket="$DIR/munge/munge.sock" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
  --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"

mariadb-install-db --no-defaults --datadir="$DIR/mysql" --auth-root-authentication-method=normal \
  --skip-test-db --user="$(id -un)" > "$DIR/log/mariadb-install.log" 2>&1
mariadbd --no-defaults --datadir="$DIR/mysql" --socket="$DIR/mysql.sock" --bind-address=127.0.0.1 \
  --port="$DB_PORT" --pid-file="$DIR/mariadbd.pid" --log-error="$DIR/log/mariadbd.log" --user="$(id -un)" \
  --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --skip-log-bin --performance-schema=OFF \
  > /dev/null 2>&1 &
for _ in $(seq 1 30); do
  mariadb --no-defaults -S "$DIR/mysql.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.5
done

slurmdbd
for _ in $(seq 1 30); do
  sacctmgr -n list cluster >/dev/null 2>&1 && break
  sleep 0.5
done
sacctmgr -i add cluster gpulease >/dev/null 2>&1 || true

slurmctld -c -f "$CONF"
for name in $(node_names); do slurmd -f "$CONF" -N "$name"; done

for _ in $(seq 1 60); do
  if cluster_up; then
    echo "slurm: up with $NODES nodes x $GPUS GPUs ($CONF)"
    echo "export SLURM_CONF=$CONF"
    exit 0
  fi
  sleep 1
done
echo "slurm: nodes did not become idle within 60 s:" >&2
sinfo -N -l >&2 || true
tail -n 20 "$DIR/log/slurmctld.log" >&2 || true
exit 1
