#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to test profiles/slurm for real (issue 7).
#
#   scripts/slurm-local.sh start    install Debian's slurm-wlm + munge if needed (apt-get),
#                                   write /etc/slurm/slurm.conf for this machine, start munged,
#                                   slurmctld and slurmd (no systemd) and wait until the node
#                                   is idle
#   scripts/slurm-local.sh stop     stop the three daemons this script started (by PID file)
#   scripts/slurm-local.sh status   sinfo / squeue, exit 1 if the controller does not answer
#   scripts/slurm-local.sh install  only the packages
#
# Needs root (daemons, /etc/slurm, apt-get). The cluster: partition `local` (the default),
# one node with this machine's CPUs and memory and two fake GPUs (GRES whose "devices" are
# copies of /dev/null, so the rules' gpu=1 requests are scheduled as on a GPU cluster while
# torch runs on the CPU),
# no accounting database (the plugin must query job states with squeue, which sees finished
# jobs for MinJobAge seconds), no cgroups. tests/test_slurm.py runs the demo through it.
#
# An existing slurm.conf not written by this script is never overwritten (exit 2).
# Logs: /var/log/slurm/slurm{ctld,d}.log, /var/log/munge/munged.log.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES_CONF=$CONF_DIR/gres.conf
MARKER="# written by expodiff scripts/slurm-local.sh"
PARTITION=local
FAKE_GPUS=${SLURM_LOCAL_GPUS:-2}
FAKE_GPU_DIR=/var/lib/slurm/fake-gpus
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
WAIT_SECONDS=${SLURM_LOCAL_WAIT:-60}

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (starts daemons, writes $CONF)"
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    command -v apt-get >/dev/null || die "slurm is not installed and apt-get is not available"
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # the packages' scripts must not start the daemons (no config yet; this script starts them)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # the package lists may be missing (fresh container) or stale (404 on a superseded .deb)
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
    fi
}

# the first PID in a PID file, if that process is alive
alive_pid() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(head -n1 "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching it" 2
    fi
    mkdir -p "$CONF_DIR"
    cat >"$CONF" <<EOF
$MARKER (one-node test cluster)
ClusterName=expodiff-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: processes are tracked through /proc, tasks are not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# no accounting database: sacct cannot answer, so Snakemake's plugin polls squeue, which
# lists a finished job for MinJobAge seconds (the plugin needs >= 3 x its first status
# check interval, 120 s by default)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
# refuse at submission what the node can never run (as most clusters do), instead of a job
# pending forever
EnforcePartLimits=ALL
# fake GPUs (no device files): jobs requesting --gpus are scheduled, nothing is bound
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$FAKE_GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # slurmd drops GPUs without device files: give it character devices that are /dev/null
    # (regular files where mknod is not allowed: 22.05 logs an error for those but counts them)
    rm -rf "$FAKE_GPU_DIR"
    mkdir -p "$FAKE_GPU_DIR"
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        mknod "$FAKE_GPU_DIR/gpu$i" c 1 3 2>/dev/null || touch "$FAKE_GPU_DIR/gpu$i"
    done
    cat >"$GRES_CONF" <<EOF
$MARKER
NodeName=$host Name=gpu File=$FAKE_GPU_DIR/gpu[0-$((FAKE_GPUS - 1))]
EOF
    say "wrote $CONF (node $host: $cpus CPUs, $mem_mb MB, $FAKE_GPUS fake GPUs; partition $PARTITION)"
}

start_munge() {
    if alive_pid "$MUNGE_PID" >/dev/null; then
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
}

start_daemons() {
    mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
    if ! alive_pid "$CTLD_PID" >/dev/null; then
        /usr/sbin/slurmctld
    fi
    if ! alive_pid "$SLURMD_PID" >/dev/null; then
        /usr/sbin/slurmd
    fi
}

wait_idle() {
    local deadline state
    deadline=$((SECONDS + WAIT_SECONDS))
    while [ $SECONDS -lt $deadline ]; do
        state=$(sinfo --responding --noheader --partition "$PARTITION" --format %T 2>/dev/null | head -n1 || true)
        case "$state" in
        idle | mixed | allocated)
            say "node is $state (partition $PARTITION)"
            return 0
            ;;
        drain* | down*)
            # a node left down by an earlier run: return it to service
            scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
            ;;
        inval*)
            break # the node does not match slurm.conf (the reason is printed below)
            ;;
        esac
        sleep 0.5
    done
    sinfo -R >&2 || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    die "the node is not idle (state: ${state:-no answer}); see the logs above"
}

stop_daemons() {
    local pid name file
    for name in slurmd slurmctld munged; do
        case $name in
        slurmd) file=$SLURMD_PID ;;
        slurmctld) file=$CTLD_PID ;;
        munged) file=$MUNGE_PID ;;
        esac
        if pid=$(alive_pid "$file"); then
            kill "$pid"
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            say "stopped $name (pid $pid)"
        fi
        # a stale PID file makes the packages' removal scripts call the controller
        alive_pid "$file" >/dev/null || rm -f "$file"
    done
}

case "${1:-}" in
install)
    need_root
    install_packages
    ;;
start)
    need_root
    started=$SECONDS
    install_packages
    write_config
    start_munge
    start_daemons
    wait_idle
    say "ready in $((SECONDS - started)) s; stop with: $0 stop"
    ;;
stop)
    need_root
    [ -f "$CONF" ] && grep -qF "$MARKER" "$CONF" ||
        die "$CONF was not written by this script: not stopping this machine's SLURM"
    stop_daemons
    ;;
status)
    sinfo && squeue --states=all
    ;;
*)
    echo "usage: $0 start|stop|status|install" >&2
    exit 64
    ;;
esac
