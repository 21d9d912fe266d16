#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (slurmctld + slurmd + munge, no systemd), for the
# tests in tests/cluster/ and for trying `hydra/launcher=slurm` locally:
#
#   bash scripts/start_slurm.sh        # installs what is missing, writes the config, starts, waits
#
# Idempotent: when the controller answers and the node is usable it prints so and exits at once.
# Exit status 0 when the node is idle (or busy with jobs), 1 when it cannot be started (the reason is
# printed; the SLURM tests then skip). Needs root for apt-get and for writing /etc/slurm.
#
# The cluster (ENV.md gotcha 11): one node = this host, CPUs from nproc, RealMemory about 90 % of
# RAM (more marks the node invalid), proctrack/linuxproc, task/none, select/cons_tres with CR_Core,
# no accounting (so the sacct stand-in scripts/slurm/sacct is installed as /usr/local/bin/sacct for
# submitit), MinJobAge=86400 (finished jobs stay visible to squeue, which the stand-in reads).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
PARTITION=${SLURM_PARTITION:-mathml}
WAIT_S=${SLURM_START_TIMEOUT_S:-60}
SACCT_DEST=/usr/local/bin/sacct
say() { echo "start_slurm: $*"; }
fail() { echo "start_slurm: cannot start SLURM: $*" >&2; exit 1; }

node_state() { sinfo -h -N -o %t 2>/dev/null | head -1; }
usable() {  # the controller answers, this node's slurmd runs, and the node takes jobs
  timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" || return 1
  pgrep -x slurmd >/dev/null || return 1
  case "$(node_state)" in idle | mix | alloc | comp) return 0 ;; *) return 1 ;; esac
}
install_sacct() {
  if ! cmp -s "$HERE/slurm/sacct" "$SACCT_DEST" 2>/dev/null; then
    install -m 0755 "$HERE/slurm/sacct" "$SACCT_DEST" && say "installed the sacct stand-in as $SACCT_DEST"
  fi
  [ "$(command -v sacct)" = "$SACCT_DEST" ] || say "warning: \`sacct\` resolves to $(command -v sacct), not $SACCT_DEST (put /usr/local/bin first in PATH for submitit)"
}

# The configuration: one node, this host.
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
conf=$(cat <<EOF
# Written by scripts/start_slurm.sh: a one-node test cluster (no accounting, no cgroups).
ClusterName=mathml
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire + 1 s before it may start again (SLURM's default: 121 s).
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=86400
ReturnToService=2
KillWait=5
InactiveLimit=0
MpiDefault=none
SchedulerType=sched/backfill
# Look for startable jobs every second (a requeued job becomes eligible by time, not by an event;
# the default main-loop interval is 60 s).
SchedulerParameters=bf_interval=1,sched_interval=1
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
conf_changed() { [ "$conf" != "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" ]; }
write_conf() {
  mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  printf '%s\n' "$conf" >"$CONF_DIR/slurm.conf"
  say "wrote $CONF_DIR/slurm.conf (node $HOST, CPUs=$CPUS, RealMemory=${MEM_MB} MB, partition $PARTITION)"
}

# 0. Already up: a quick no-op (a changed configuration is written and re-read first).
if command -v scontrol >/dev/null && usable; then
  if [ "$(id -u)" = 0 ]; then
    install_sacct
    if conf_changed && grep -q "^# Written by scripts/start_slurm.sh" "$CONF_DIR/slurm.conf" 2>/dev/null; then
      write_conf && scontrol reconfigure && say "told the running daemons to re-read it (scontrol reconfigure)"
    fi
  fi
  say "already up (node $(hostname -s): $(node_state))"
  exit 0
fi

# 1. Packages.
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get, --no-install-recommends)"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 300 apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/start_slurm.apt.log 2>&1; then
    timeout 300 apt-get update -q >>/tmp/start_slurm.apt.log 2>&1
    timeout 300 apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/start_slurm.apt.log 2>&1 \
      || fail "apt-get install ${missing[*]} failed (log: /tmp/start_slurm.apt.log)"
  fi
fi

# 2. Configuration.
conf_changed && write_conf
install_sacct

# 3. Daemons, in order: munged (as the munge user), slurmctld, slurmd.
if ! pgrep -x munged >/dev/null; then
  if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --keyfile=/etc/munge/munge.key) \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    say "created /etc/munge/munge.key"
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
  say "started munged"
fi
if ! pgrep -x slurmctld >/dev/null; then
  slurmctld || fail "slurmctld did not start (log: /var/log/slurm/slurmctld.log)"
  say "started slurmctld"
fi
for _ in $(seq 1 "$WAIT_S"); do timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 1; done
if ! pgrep -x slurmd >/dev/null; then
  slurmd || fail "slurmd did not start (log: /var/log/slurm/slurmd.log)"
  say "started slurmd"
fi

# 4. Wait (bounded) until the node takes jobs; a node left down or drained by an earlier run resumes.
for i in $(seq 1 "$WAIT_S"); do
  usable && { say "up: node $HOST $(node_state), partition $PARTITION (${i} s)"; exit 0; }
  case "$(node_state)" in
    down* | drain* | drng*) scontrol update nodename="$HOST" state=resume 2>/dev/null ;;
  esac
  sleep 1
done
fail "node $HOST is '$(node_state)' after ${WAIT_S} s (logs: /var/log/slurm/)"
