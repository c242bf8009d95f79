#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on 127.0.0.1 (with its own munge), for the R tests of
# cluster_config().
#
#   slurm.sh start DIR   creates DIR (munge key and socket, slurm.conf, state and spool
#                        directories), starts munged, slurmctld and slurmd, waits until the node
#                        is idle, and writes DIR/env: `SLURM_CONF=DIR/slurm.conf`, which every
#                        client command (sbatch, squeue, scancel) needs in its environment.
#   slurm.sh stop DIR    cancels the cluster's jobs and stops its daemons.
#
# The node is `localhost` (NodeAddr 127.0.0.1) with 8 CPUs whatever the machine has
# (SlurmdParameters=config_overrides), so several one-CPU daemon jobs run at once; slurmctld
# and slurmd bind 127.0.0.1 only (CommunicationParameters=NoCtldInAddrAny,NoInAddrAny).
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge. Exits non-zero, saying
# why, if the cluster cannot be started.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$(realpath -m "$dir")
export SLURM_CONF="$dir/slurm.conf"

# A TCP port of 127.0.0.1 nobody listens on now.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

pid_of() { [[ -f "$1" ]] && cat "$1" 2>/dev/null || true; }

stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if [[ -f "$SLURM_CONF" ]]; then
    # Jobs first (their daemons end with them), then the controller and node daemons.
    timeout 10 scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.2
    done
    timeout 10 scontrol shutdown 2>/dev/null || true
  fi
  stop_pid "$(pid_of "$dir/slurmd.pid")"
  stop_pid "$(pid_of "$dir/slurmctld.pid")"
  if [[ -f "$dir/munge-dir" ]]; then
    local mdir
    mdir=$(cat "$dir/munge-dir")
    stop_pid "$(pid_of "$mdir/munged.pid")"
    [[ "$mdir" == /tmp/mirai-munge.* ]] && rm -rf "$mdir"
    rm -f "$dir/munge-dir" "$dir/munge"
  fi
}

start() {
  local b
  for b in munged slurmctld slurmd sbatch squeue scancel scontrol sinfo; do
    command -v "$b" >/dev/null || [[ -x "/usr/sbin/$b" ]] ||
      { echo "slurm.sh: $b not found: install slurmctld, slurmd, slurm-client and munge (scripts/deps.sh)" >&2; exit 1; }
  done
  [[ $(id -u) == 0 ]] || { echo "slurm.sh: must run as root (SlurmUser=root, munged as user munge)" >&2; exit 1; }
  id munge >/dev/null 2>&1 || { echo "slurm.sh: no 'munge' user: install munge" >&2; exit 1; }
  mkdir -p "$dir/state" "$dir/spool" "$dir/jobs"
  chmod 755 "$dir" "$dir/jobs"

  # munge: its own key and socket. munged runs as the munge user and insists on an unshared key
  # and a socket directory that everyone may reach, so its files live in a directory of /tmp
  # (DIR may be inside a private one, such as R's session temporary directory).
  local mdir
  mdir=$(mktemp -d /tmp/mirai-munge.XXXXXX)
  echo "$mdir" > "$dir/munge-dir"
  ln -sfn "$mdir" "$dir/munge"
  chown munge:munge "$mdir"
  chmod 755 "$mdir"
  head -c 1024 /dev/urandom > "$mdir/munge.key"
  chown munge:munge "$mdir/munge.key"
  chmod 400 "$mdir/munge.key"
  runuser -u munge -- /usr/sbin/munged --key-file="$mdir/munge.key" \
    --socket="$mdir/munge.socket" --pid-file="$mdir/munged.pid" \
    --seed-file="$mdir/munged.seed" --log-file="$mdir/munged.log" ||
    { echo "slurm.sh: munged did not start; its log:" >&2; tail -5 "$mdir/munged.log" >&2 || true; stop; exit 1; }

  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  cat > "$SLURM_CONF" <<EOF
ClusterName=miraitest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$mdir/munge.socket
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
SchedulerParameters=sched_interval=1
KillWait=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=mirai Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  echo "SLURM_CONF=$SLURM_CONF" > "$dir/env"

  /usr/sbin/slurmctld -f "$SLURM_CONF" -i ||
    { echo "slurm.sh: slurmctld did not start; its log:" >&2; tail -20 "$dir/slurmctld.log" >&2 || true; stop; exit 1; }
  /usr/sbin/slurmd -f "$SLURM_CONF" -N localhost ||
    { echo "slurm.sh: slurmd did not start; its log:" >&2; tail -20 "$dir/slurmd.log" >&2 || true; stop; exit 1; }
  local state=""
  for _ in $(seq 150); do
    state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null || true)
    [[ "$state" == idle ]] && break
    sleep 0.2
  done
  if [[ "$state" != idle ]]; then
    echo "slurm.sh: the node did not become idle (state '$state'); logs:" >&2
    tail -10 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    stop
    exit 1
  fi
  echo "slurm running: slurmctld 127.0.0.1:$ctld_port, slurmd 127.0.0.1:$slurmd_port; export SLURM_CONF=$SLURM_CONF"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
