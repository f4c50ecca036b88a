#!/usr/bin/env bash
# tests/slurm/test_slurm.sh SCCONV_BINARY: `scconv ablate` through a real Slurm. Starts a one-node
# cluster on this machine (munged, slurmctld and slurmd from Debian's munge and slurm-wlm, a
# generated slurm.conf, everything under a temporary folder, stopped at the end), then
#   1. submits a tiny plan (2 variants x 2 seeds, ResNet-20, 320 random images, 1 epoch) as a
#      job array of 2 shards with scripts/slurm/ablate.sbatch and `sbatch --wait`, collects, and
#      checks that the table has both cells with 2 of 2 seeds;
#   2. submits a longer one-run plan, cancels its task mid-run with `scancel` (the trainer writes
#      a checkpoint at the next step), resubmits, and checks that the run ends with the same
#      weights as the same config trained without interruption.
# Exit 77 (ctest: skipped) with the reason when Slurm or munge is missing or cannot start here.
# scripts/install-deps.sh --slurm installs them. Run: ctest -R test_slurm --output-on-failure
set -euo pipefail
SCCONV=$(realpath "$1")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIPPED: $*"; exit 77; }
for b in munged munge slurmctld slurmd sbatch squeue scancel sinfo; do
  command -v "$b" > /dev/null || skip "'$b' is not installed (scripts/install-deps.sh --slurm installs slurm-wlm and munge)"
done
T=$(mktemp -d /tmp/scconv_slurm_XXXXXX)
export SLURM_CONF=$T/slurm.conf
cleanup() {
  scancel --quiet --full -u "$(id -un)" 2> /dev/null || true
  for p in slurmd slurmctld munged; do [[ -f $T/$p.pid ]] && kill "$(cat "$T/$p.pid")" 2> /dev/null || true; done
  sleep 1
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T"/{state,spool,log}
# ---- the cluster: ports from this process's id, so two test runs do not meet ----
port=$((20000 + ($$ % 20000)))
host=$(hostname -s)
install -m 600 /dev/null "$T/munge.key"
head -c 1024 /dev/urandom > "$T/munge.key"
cat > "$SLURM_CONF" <<EOF
ClusterName=scconvtest
SlurmctldHost=$host
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldPort=$port
SlurmdPort=$((port + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=60
NodeName=$host CPUs=$(nproc) RealMemory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 2048)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
munged --force -S "$T/munge.socket" --pid-file="$T/munged.pid" --log-file="$T/log/munged.log" \
  --key-file="$T/munge.key" --seed-file="$T/munged.seed" 2> "$T/log/munged.err" ||
  skip "munged does not start here: $(tail -1 "$T/log/munged.err")"
slurmctld -f "$SLURM_CONF" 2> "$T/log/slurmctld.err" || skip "slurmctld does not start here: $(tail -1 "$T/log/slurmctld.err")"
slurmd -f "$SLURM_CONF" 2> "$T/log/slurmd.err" || skip "slurmd does not start here: $(tail -1 "$T/log/slurmd.err")"
for _ in $(seq 60); do sinfo -h -o %t 2> /dev/null | grep -q idle && break; sleep 0.5; done
sinfo -h -o %t | grep -q idle || skip "the Slurm node did not come up: $(tail -3 "$T/log/slurmctld.log" | tr '\n' ' ')"
echo "== a one-node Slurm cluster is up ($(sinfo -h -o '%P %D %C'))"

# ---- data: CIFAR-10 files of random images (the tables' mechanics, not accuracy) ----
D=$T/data
mkdir -p "$D"
records() { for i in $(seq "$1"); do printf "\\x0$((i % 10))"; head -c 3072 /dev/urandom; done; }
for b in 1 2 3 4 5; do records 64 > "$D/data_batch_$b.bin"; done
records 64 > "$D/test_batch.bin"
base='{"model": {"arch": "resnet20"}, "data": {"dataset": "cifar10", "dir": "'$D'"},
       "optim": {"lr": 0.05}, "schedule": {"kind": "constant"}, "batch_size": 64, "threads": 1'

# ---- 1. a 2 x 2 plan as an array of 2 shards ----
cat > "$T/plan.json" <<EOF
{"name": "slurm-tiny", "base": $base, "epochs": 1},
 "axes": {"variant": {"plain": {}, "scconv": {"model.conv": "scconv"}}}, "seeds": [1, 2]}
EOF
cd "$T"
SCCONV=$SCCONV sbatch --wait --array=0-1 --cpus-per-task=1 --mem=1G -o "$T/log/tiny-%a.out" \
  "$REPO/scripts/slurm/ablate.sbatch" "$T/plan.json" "$T/out" > /dev/null ||
  { echo "FAIL: the job array failed"; tail -n 20 "$T"/log/tiny-*.out; exit 1; }
"$SCCONV" ablate "$T/plan.json" --out "$T/out" --list
"$SCCONV" ablate "$T/plan.json" --out "$T/out" --collect > /dev/null
cat "$T/out/results.md"
grep -q "^| plain | .* | 2/2 |" "$T/out/results.md" || { echo "FAIL: cell plain lacks 2/2 seeds"; cat "$T"/log/tiny-*.out; exit 1; }
grep -q "^| scconv | .* | 2/2 |" "$T/out/results.md" || { echo "FAIL: cell scconv lacks 2/2 seeds"; exit 1; }
[[ $(grep -c "training (log" "$T"/log/tiny-*.out | awk -F: '{s += $2} END {print s}') == 4 ]] ||
  { echo "FAIL: the 4 runs were not trained exactly once"; cat "$T"/log/tiny-*.out; exit 1; }
echo "== 1. the array trained each of the 4 runs once; the table has 2/2 seeds per cell"

# ---- 2. scancel mid-run, resubmit, same weights as uninterrupted ----
cat > "$T/long.json" <<EOF
{"name": "slurm-cancel", "base": $base, "epochs": 4}, "axes": {"variant": {"plain": {}}}, "seeds": [3]}
EOF
job=$(SCCONV=$SCCONV sbatch --parsable --cpus-per-task=1 --mem=1G -o "$T/log/long-1.out" \
  "$REPO/scripts/slurm/ablate.sbatch" "$T/long.json" "$T/long")
run="$T/long/runs/variant=plain,seed=3"
for _ in $(seq 600); do [[ -f $run/metrics.jsonl ]] && break; sleep 0.2; done
[[ -f $run/metrics.jsonl ]] || { echo "FAIL: the run never finished its first epoch"; cat "$T/log/long-1.out"; exit 1; }
scancel "$job"
for _ in $(seq 300); do [[ -z $(squeue -h -j "$job" 2> /dev/null) ]] && break; sleep 0.2; done
"$SCCONV" ablate "$T/long.json" --out "$T/long" --list | tee "$T/list.txt"
grep -q "^pending.*resumes after epoch" "$T/list.txt" || { echo "FAIL: the cancelled run left no checkpoint"; cat "$T/log/long-1.out"; exit 1; }
SCCONV=$SCCONV sbatch --wait --cpus-per-task=1 --mem=1G -o "$T/log/long-2.out" \
  "$REPO/scripts/slurm/ablate.sbatch" "$T/long.json" "$T/long" > /dev/null ||
  { echo "FAIL: the resubmitted job failed"; tail -n 20 "$T/log/long-2.out"; exit 1; }
[[ -f $run/summary.json ]] || { echo "FAIL: the resubmitted run did not finish"; cat "$T/log/long-2.out"; exit 1; }
# the same config without Slurm or interruption
sed 's|"out": "[^"]*"|"out": "'"$T"'/ref"|' "$T/long/.ablate/variant=plain,seed=3.config.json" > "$T/ref.json"
"$SCCONV" train --config "$T/ref.json" 2> "$T/log/ref.err"
# compare the tensors (a safetensors file: 8-byte header length, the JSON header, then the data;
# the headers differ in the run's folder name)
payload() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1"; }
cmp <(payload "$run/checkpoint/model.safetensors") <(payload "$T/ref/checkpoint/model.safetensors") ||
  { echo "FAIL: the resumed run's weights differ from the uninterrupted run's"; exit 1; }
grep -q "stopped; it resumes on the next call" "$T/log/long-1.out" || { echo "FAIL: the shard did not report the stop"; exit 1; }
echo "== 2. scancel stopped the run with a checkpoint; resubmitted, it ended with the uninterrupted run's weights"
