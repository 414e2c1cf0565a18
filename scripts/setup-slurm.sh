#!/usr/bin/env bash
# A one-node Slurm on this machine for the Slurm executor's tests (test/unit/slurm-*.test.ts), idempotently:
#   - Debian's slurmctld, slurmd, slurm-client and munge (apt, when missing);
#   - a minimal slurm.conf for one node (this host, at 127.0.0.1, every CPU) without cgroups or accounting,
#     written to /etc/slurm/slurm.conf only when that file is absent or was written by this script;
#   - munged, slurmctld and slurmd started when not running; state, spool and logs in /tmp/nad-slurm.
# Waits until `sinfo` shows the node idle (or mixed/allocated: someone's jobs already run). Fast when all
# is up. Exits non-zero with the daemons' last log lines when Slurm cannot start; the tests then skip.
set -euo pipefail

log() { echo "[setup-slurm] $*" >&2; }

conf=/etc/slurm/slurm.conf
state=/tmp/nad-slurm
marker='# written by nad-vscode scripts/setup-slurm.sh'
node=$(hostname -s)
cpus=$(nproc)

node_up() {
  local s
  s=$(sinfo -h -n "$node" -o '%t' 2>/dev/null | head -n1) || return 1
  [[ $s == idle* || $s == mix* || $s == alloc* ]]
}

if command -v sinfo >/dev/null 2>&1 && node_up; then
  log "Slurm is up (node $node)"
  exit 0
fi

# Two setups at once (the test setup and a test file) must not start the daemons twice.
mkdir -p "$state"
exec 9>"$state/.lock"
flock -w 300 9 || { log "timed out waiting for another setup holding $state/.lock"; exit 1; }
if command -v sinfo >/dev/null 2>&1 && node_up; then
  log "Slurm is up (node $node)"
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

# --- Debian packages --------------------------------------------------------------------------
missing=()
command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
command -v munged >/dev/null 2>&1 || missing+=(munge)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- slurm.conf -------------------------------------------------------------------------------
if [[ -f $conf ]] && ! grep -qF "$marker" "$conf"; then
  log "$conf exists and was not written by this script: using it as it is"
else
  "${sudo_cmd[@]}" mkdir -p /etc/slurm
  "${sudo_cmd[@]}" tee "$conf" >/dev/null <<EOF
$marker
ClusterName=nadtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
# No cgroups in containers: processes are tracked by their parent pid, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
# Without accounting (no sacct), finished jobs stay visible to squeue/scontrol for an hour.
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
fi
"${sudo_cmd[@]}" mkdir -p "$state/ctld" "$state/d"

# --- daemons ----------------------------------------------------------------------------------
running() { pgrep -x "$1" >/dev/null 2>&1; }

if ! running munged; then
  "${sudo_cmd[@]}" mkdir -p /run/munge /var/lib/munge /var/log/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    "${sudo_cmd[@]}" sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
  fi
  "${sudo_cmd[@]}" chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  "${sudo_cmd[@]}" chmod 0700 /etc/munge
  "${sudo_cmd[@]}" chmod 0400 /etc/munge/munge.key
  "${sudo_cmd[@]}" runuser -u munge -- /usr/sbin/munged
fi
running slurmctld || "${sudo_cmd[@]}" /usr/sbin/slurmctld
running slurmd || "${sudo_cmd[@]}" /usr/sbin/slurmd

for _ in $(seq 1 60); do
  if node_up; then
    log "Slurm is up (node $node, $cpus CPUs)"
    exit 0
  fi
  # A node that was down (an earlier sitting's daemons were killed) comes back once slurmd registers.
  sinfo -h -n "$node" -o '%t' 2>/dev/null | grep -q '^down' && "${sudo_cmd[@]}" scontrol update nodename="$node" state=resume 2>/dev/null || true
  sleep 1
done
log "Slurm did not come up within 60 s; the last lines of its logs:"
tail -n 5 "$state/slurmctld.log" "$state/slurmd.log" >&2 2>/dev/null || true
exit 1
