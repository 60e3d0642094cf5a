#!/usr/bin/env bash
# Stop the local Slurm cluster .ci/slurm-up.sh started, by the pids it recorded; nothing else is touched.
set -uo pipefail
DIR=${GPULEASE_SLURM_DIR:-/tmp/gpulease-slurm}
[ -d "$DIR" ] || exit 0
stopped=0

stop() {  # stop the daemons behind these pid files and wait for them (SIGKILL after 10 s)
  local pids=() f pid
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    # Only a daemon of this cluster: its command line or environment (slurmdbd finds its config through
    # SLURM_CONF) names this directory.
    if [ -n "$pid" ] && cat "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null | tr '\0' ' ' | grep -q -- "$DIR"; then
      kill "$pid" 2>/dev/null && pids+=("$pid")
    fi
    rm -f "$f"
  done
  for _ in $(seq 1 20); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  stopped=$((stopped + ${#pids[@]}))
}

# Slurm's daemons first, then what they use (accounting, its database, authentication).
stop "$DIR"/slurmd-*.pid "$DIR/slurmctld.pid"
stop "$DIR/slurmdbd.pid"
stop "$DIR/mariadbd.pid" "$DIR/munge/munged.pid"
echo "slurm: stopped ($stopped daemons)"
