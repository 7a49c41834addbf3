#!/usr/bin/env bash
# Tessera (3 nodes, one machine) against PostgreSQL 15 (single node, fsync
# on, as /work/shared/bench/pg_baseline.sh sets it up) with the same
# clients: pgbench TPC-B-like (scale 10, -c 8 -j 2, -M prepared) and
# sysbench oltp_point_select and oltp_read_write. Prints Tessera/PostgreSQL
# ratios; targets: pgbench >= 0.25, point select >= 0.5. On Tessera the
# accounts table is split into 6 ranges before the TPC-B run. Then, on
# Tessera alone: the p50 latency of a transaction updating two rows in one
# range against one updating a row in each of two ranges (parallel commits:
# target <= 1.5x), and the same with every node started --linearizable
# (commit-wait overhead).
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
  if [ "$name" = tessera ]; then split_accounts "$host" "$port" "$user" "$db"; fi
  "$PGBIN/pgbench" -h "$host" -p "$port" -U "$user" -c 8 -j 2 -T "$T" -M prepared "$db" > "$OUT/$name.pgbench" 2>&1
  local sb=(sysbench --db-driver=pgsql --pgsql-host="$host" --pgsql-port="$port" --pgsql-user="$user"
            --pgsql-db="$db" --tables=1 --table-size="$TABLE_SIZE")
  "${sb[@]}" oltp_read_write --threads=4 prepare > "$OUT/$name.sb_prepare" 2>&1
  "${sb[@]}" oltp_point_select --threads=8 --time="$T" run > "$OUT/$name.sb_point" 2>&1
  "${sb[@]}" oltp_read_write --threads=8 --time="$T" run > "$OUT/$name.sb_rw" 2>&1
}
# Tessera: pgbench_accounts in 6 ranges (SPLIT AT), shown with their
# leaseholders.
split_accounts() {  # host port user db
  local n=$((SCALE * 100000)) at=""
  for i in 1 2 3 4 5; do at="$at${at:+, }($((n * i / 6)))"; done
  psql -h "$1" -p "$2" -U "$3" "$4" -qc "ALTER TABLE pgbench_accounts SPLIT AT VALUES $at" > /dev/null
  psql -h "$1" -p "$2" -U "$3" "$4" -c "SHOW RANGES FROM TABLE pgbench_accounts" > "$OUT/tessera.ranges"
}

# p50 latency (ms) of a one-client pgbench script run for T/3 seconds.
p50_ms() {  # port name script
  (cd "$OUT" && "$PGBIN/pgbench" -h 127.0.0.1 -p "$1" -U root -n -c 1 -T $((T / 3 + 1)) -M prepared \
      -f "$3" -l --log-prefix="log_$2" defaultdb > "$OUT/$2-report.txt" 2>&1)
  cat "$OUT/log_$2".* 2>/dev/null | awk '{print $3}' | sort -n \
    | awk '{v[NR]=$1} END {if (NR) printf "%.2f", v[int((NR+1)/2)]/1000; else print "n/a"}'
}

# Two rows per transaction: both in range A, or one in range A and one in
# range B (the table is split at k = 1000).
latency_setup() {  # port
  psql -h 127.0.0.1 -p "$1" -U root defaultdb -q > /dev/null <<SQL
CREATE TABLE lat (k INT PRIMARY KEY, v INT);
INSERT INTO lat SELECT g, 0 FROM generate_series(1, 1999) AS g;
ALTER TABLE lat SPLIT AT VALUES (1000);
SQL
  printf '\\set a random(1, 499)\n\\set b random(500, 999)\nBEGIN;\nUPDATE lat SET v = v + 1 WHERE k = :a;\nUPDATE lat SET v = v + 1 WHERE k = :b;\nEND;\n' > "$OUT/one_range.sql"
  printf '\\set a random(1, 999)\n\\set b random(1000, 1999)\nBEGIN;\nUPDATE lat SET v = v + 1 WHERE k = :a;\nUPDATE lat SET v = v + 1 WHERE k = :b;\nEND;\n' > "$OUT/two_ranges.sql"
  # Both leases on the node the client talks to (leases follow their
  # load), so that the two cases differ only in the commit protocol.
  local i
  for i in $(seq 15); do
    "$PGBIN/pgbench" -h 127.0.0.1 -p "$1" -U root -n -c 1 -T 2 -M prepared -f "$OUT/two_ranges.sql" defaultdb > /dev/null 2>&1
    [ "$(psql -h 127.0.0.1 -p "$1" -U root defaultdb -At -c "SHOW RANGES FROM TABLE lat" | awk -F'|' '$5 == 1' | wc -l)" = 2 ] && break
  done
  psql -h 127.0.0.1 -p "$1" -U root defaultdb -c "SHOW RANGES FROM TABLE lat" >> "$OUT/lat.ranges"
}

start_tessera() {  # extra demo flags...
  "$BIN" demo --no-shell --nodes 3 --sql-port "$TS_PORT" "$@" > "$OUT/tessera.log" 2>&1 & pids+=($!)
  for _ in $(seq 60); do psql -h 127.0.0.1 -p "$TS_PORT" -U root defaultdb -c 'select 1' >/dev/null 2>&1 && break; sleep 1; done
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
start_tessera
run_clients tessera 127.0.0.1 "$TS_PORT" root defaultdb
latency_setup "$TS_PORT"
one=$(p50_ms "$TS_PORT" one_range "$OUT/one_range.sql")
two=$(p50_ms "$TS_PORT" two_ranges "$OUT/two_ranges.sql")
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()

# Tessera, 3 nodes, --linearizable.
start_tessera --linearizable
latency_setup "$TS_PORT"
lin_one=$(p50_ms "$TS_PORT" lin_one_range "$OUT/one_range.sql")
lin_two=$(p50_ms "$TS_PORT" lin_two_ranges "$OUT/two_ranges.sql")

printf '%-28s %12s %12s %8s %8s\n' workload postgres tessera ratio target
row() {
  local r; r=$(awk -v a="$3" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
  printf '%-28s %12s %12s %8s %8s\n' "$1" "$2" "$3" "$r" "$4"
}
row "pgbench tpcb -M prepared" "$(tps "$OUT/pg.pgbench")" "$(tps "$OUT/tessera.pgbench")" ">=0.25"
row "sysbench oltp_point_select" "$(sb_tps "$OUT/pg.sb_point")" "$(sb_tps "$OUT/tessera.sb_point")" ">=0.5"
row "sysbench oltp_read_write" "$(sb_tps "$OUT/pg.sb_rw")" "$(sb_tps "$OUT/tessera.sb_rw")" "-"
echo "sysbench oltp_read_write ignored errors (retried 40001/40P01): postgres $(grep -oP 'ignored errors:\s+\K\d+' "$OUT/pg.sb_rw"), tessera $(grep -oP 'ignored errors:\s+\K\d+' "$OUT/tessera.sb_rw")"
echo
printf '%-40s %10s %10s %8s %8s\n' "tessera p50 latency (ms), 1 client" "1 range" "2 ranges" ratio target
lrow() {
  local r; r=$(awk -v a="$3" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  printf '%-40s %10s %10s %8s %8s\n' "$1" "$2" "$3" "$r" "$4"
}
lrow "2-row update transaction" "$one" "$two" "<=1.5"
lrow "same, --linearizable" "$lin_one" "$lin_two" "-"
echo "accounts ranges:"; cat "$OUT/tessera.ranges"
echo "latency table ranges (default run, then --linearizable run):"; cat "$OUT/lat.ranges"
echo "raw outputs: $OUT"
