#!/usr/bin/env bash
# KV benchmark: a 3-node Tessera cluster next to a 3-member etcd cluster and
# the disk's fsync floor, all on this machine, in one run. Prints the table
# for the README's performance section.
#
# Usage: SECS=20 bash bench/kv_vs_etcd.sh
# Needs (installed if missing, Debian): etcd-server etcd-client postgresql
# (pg_test_fsync) protobuf-compiler (etcd load generator build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
SECS=${SECS:-20}
OUT=${OUT:-/tmp/bench_results/tessera}; mkdir -p "$OUT"
export QUIET_MAX=${QUIET_MAX:-10}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need etcd || ! need etcdctl || [ ! -x /usr/lib/postgresql/15/bin/pg_test_fsync ] || ! need protoc; then
  apt-get update -qq
  apt-get install -y -qq etcd-server etcd-client postgresql protobuf-compiler >/dev/null
fi
[ -x /tmp/etcd-loadgen/target/release/etcd-loadgen ] || bash "$SHARED/etcd_loadgen_build.sh" >/dev/null

cargo build --release --manifest-path "$ROOT/Cargo.toml" -q
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera

echo "== fsync floor (pg_test_fsync, fdatasync one 8kB write)"
RUNS=1 SECS=5 bash "$SHARED/fsync_floor.sh" pgtest > "$OUT/fsync.txt" 2>&1 || true
FSYNC_US=$(awk '/section=1x8k method=fdatasync/ { split($5,a,"="); print a[2]; exit }' /tmp/bench_results/fsync/summary.txt)
echo "fsync_us=$FSYNC_US"

echo "== etcd 3 members (256-byte values)"
RUNS=1 SECS=$SECS PERF_LOADS=" " bash "$SHARED/etcd_baseline.sh" cluster > "$OUT/etcd.txt" 2>&1 || true
etcd_field() { grep "system=etcd3 tool=loadgen workload=$1 " /tmp/bench_results/etcd/results.txt | tail -1 | grep -oP "$2=\K[0-9.]+" ; }
ETCD_C64=$(etcd_field put_c64_all ops_per_s); ETCD_C64_P99=$(etcd_field put_c64_all p99_ms)
ETCD_C1_P50=$(etcd_field put_c1_leader p50_ms); ETCD_C1=$(etcd_field put_c1_leader ops_per_s)
echo "etcd_c64_ops=$ETCD_C64 etcd_c1_ops=$ETCD_C1 etcd_c1_p50_ms=$ETCD_C1_P50"

echo "== tessera 3 nodes"
D=$(mktemp -d /tmp/tessera-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
HOSTS=127.0.0.1:26257,127.0.0.1:26258,127.0.0.1:26259
for i in 1 2 3; do
  RUST_LOG=warn "$BIN" start --store="$D/n$i" --listen-addr=127.0.0.1:2625$((6+i)) \
    --http-addr=127.0.0.1:818$i --join=$HOSTS > "$D/n$i.log" 2>&1 &
  PIDS+=($!)
done
sleep 1
"$BIN" init --host=127.0.0.1:26257
# Wait for 3 voters.
for _ in $(seq 120); do
  "$BIN" debug ranges --host=127.0.0.1:26257 2>/dev/null | grep -q '{1,2,3}' && break; sleep 0.5
done
"$BIN" debug ranges --host=127.0.0.1:26257

wl() { "$BIN" workload kv --host=$HOSTS --duration="$SECS" "$@" | tee -a "$OUT/tessera.txt" | grep -E '^ops=' ; }
field() { echo "$1" | grep -oP "$2=\K[0-9.]+"; }
R_C64=$(wl --concurrency=64 --value-size=100)
R_C64_256=$(wl --concurrency=64 --value-size=256)
R_C1=$(wl --concurrency=1 --value-size=100)
R_READ=$(wl --concurrency=64 --value-size=100 --read-percent=100)
T_C64=$(field "$R_C64" ops_per_sec); T_C64_256=$(field "$R_C64_256" ops_per_sec)
T_C1_P50=$(field "$R_C1" p50_ms); T_READ=$(field "$R_READ" ops_per_sec)

ratio() { python3 -c "import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print(f'{a/b:.2f}' if b else 'NA')" "$1" "$2"; }
FSYNC_MS=$(python3 -c "print(${FSYNC_US:-0}/1000)")
echo
echo "| measurement | tessera | reference | ratio | target |"
echo "|---|---|---|---|---|"
echo "| puts/s, 64 clients, 100 B (etcd: 256 B) | $T_C64 | etcd $ETCD_C64 | $(ratio "$T_C64" "$ETCD_C64") | >= 1.0 |"
echo "| puts/s, 64 clients, 256 B | $T_C64_256 | etcd $ETCD_C64 | $(ratio "$T_C64_256" "$ETCD_C64") | >= 1.0 |"
echo "| put p50 ms, 1 client | $T_C1_P50 | fsync floor $FSYNC_MS ms | $(ratio "$T_C1_P50" "$FSYNC_MS") | <= 2.0 |"
echo "| gets/s, 64 clients (leaseholder reads) | $T_READ | tessera puts $T_C64 | $(ratio "$T_READ" "$T_C64") | >= 5.0 |"
