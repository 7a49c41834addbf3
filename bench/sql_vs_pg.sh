#!/usr/bin/env bash
# Tessera (3 nodes, one machine) against PostgreSQL 15 (single node, fsync
# on, as /work/shared/bench/pg_baseline.sh sets it up) with the same
# clients: pgbench TPC-B-like (scale 10, -c 8 -j 2, -M prepared) and
# sysbench oltp_point_select and oltp_read_write. Prints Tessera/PostgreSQL
# ratios; targets: pgbench >= 0.25, point select >= 0.5.
#
# Usage: bash bench/sql_vs_pg.sh   (env: T=30 seconds per run, SCALE=10,
# TABLE_SIZE=100000, PGBIN=/usr/lib/postgresql/15/bin, BIN=target/release/tessera)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${T:-30}; SCALE=${SCALE:-10}; TABLE_SIZE=${TABLE_SIZE:-100000}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BIN=${BIN:-target/release/tessera}
PG_PORT=${PG_PORT:-55450}; TS_PORT=${TS_PORT:-26950}
OUT=${OUT:-/tmp/sql_vs_pg}; rm -rf "$OUT"; mkdir -p "$OUT"
export PGSSLMODE=disable
[ -x "$BIN" ] || cargo build --release --bin tessera

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${PGDATA_DIR:-}" ] && su postgres -c "$PGBIN/pg_ctl -D $PGDATA_DIR -m fast -w stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_clients() {  # name host port user db
  local name=$1 host=$2 port=$3 user=$4 db=$5
  "$PGBIN/pgbench" -h "$host" -p "$port" -U "$user" -i -s "$SCALE" "$db" > "$OUT/$name.init" 2>&1
  "$PGBIN/pgbench" -h "$host" -p "$port" -U "$user" -c 8 -j 2 -T "$T" -M prepared "$db" > "$OUT/$name.pgbench" 2>&1
  local sb=(sysbench --db-driver=pgsql --pgsql-host="$host" --pgsql-port="$port" --pgsql-user="$user"
            --pgsql-db="$db" --tables=1 --table-size="$TABLE_SIZE")
  "${sb[@]}" oltp_read_write --threads=4 prepare > "$OUT/$name.sb_prepare" 2>&1
  "${sb[@]}" oltp_point_select --threads=8 --time="$T" run > "$OUT/$name.sb_point" 2>&1
  "${sb[@]}" oltp_read_write --threads=8 --time="$T" run > "$OUT/$name.sb_rw" 2>&1
}
tps() { grep -oP 'tps = \K[0-9.]+' "$1" | head -1; }
sb_tps() { grep -oP 'transactions:\s+\d+\s+\(\K[0-9.]+' "$1"; }

# PostgreSQL 15, fsync on.
PGDATA_DIR=$(mktemp -d /tmp/sql_vs_pg_data.XXXX); chown postgres "$PGDATA_DIR"
su postgres -c "$PGBIN/initdb -D $PGDATA_DIR -U postgres -A trust -E UTF8 --locale=C" > "$OUT/initdb.log"
cat >> "$PGDATA_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDATA_DIR'
shared_buffers = 1GB
fsync = on
synchronous_commit = on
CONF
su postgres -c "$PGBIN/pg_ctl -D $PGDATA_DIR -l $PGDATA_DIR/log -w start" > /dev/null
run_clients pg 127.0.0.1 "$PG_PORT" postgres postgres
su postgres -c "$PGBIN/pg_ctl -D $PGDATA_DIR -m fast -w stop" > /dev/null; PGDATA_DIR=

# Tessera, 3 nodes.
"$BIN" demo --no-shell --nodes 3 --sql-port "$TS_PORT" > "$OUT/tessera.log" 2>&1 & pids+=($!)
for _ in $(seq 60); do psql -h 127.0.0.1 -p "$TS_PORT" -U root defaultdb -c 'select 1' >/dev/null 2>&1 && break; sleep 1; done
run_clients tessera 127.0.0.1 "$TS_PORT" root defaultdb

printf '%-28s %12s %12s %8s %8s\n' workload postgres tessera ratio target
row() {
  local r; r=$(awk -v a="$3" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
  printf '%-28s %12s %12s %8s %8s\n' "$1" "$2" "$3" "$r" "$4"
}
row "pgbench tpcb -M prepared" "$(tps "$OUT/pg.pgbench")" "$(tps "$OUT/tessera.pgbench")" ">=0.25"
row "sysbench oltp_point_select" "$(sb_tps "$OUT/pg.sb_point")" "$(sb_tps "$OUT/tessera.sb_point")" ">=0.5"
row "sysbench oltp_read_write" "$(sb_tps "$OUT/pg.sb_rw")" "$(sb_tps "$OUT/tessera.sb_rw")" "-"
echo "raw outputs: $OUT"
