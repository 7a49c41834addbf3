#!/usr/bin/env bash
# Run the peer sqllogictest corpus against a fresh Tessera demo cluster per file.
#
# usage: scripts/slt.sh [FILE.slt ...]
#   no arguments: every *.slt in $SLT_CORPUS (default /work/shared/suites/slt-public)
#
# For each file: start `target/debug/tessera demo --no-shell --nodes 3 --sql-port P`
# on a free port P, wait until psql answers `select 1`, run that one file with the
# same settings as /work/shared/suites/run_slt.sh in SLT_FRESH_DB=0 mode (a fresh
# cluster already gives each file an empty database), then stop the demo (SIGINT, wait for exit,
# SIGKILL if it lingers). Prints per-file PASS/FAIL and `N passed, M failed`; exits
# non-zero if any file failed.
#
# environment (all optional):
#   TESSERA_BIN       default: <repo>/target/debug/tessera (build: cargo build -p tessera)
#   SLT_BIN           runner (default /tmp/slt/bin/sqllogictest, else `sqllogictest` on PATH)
#   SLT_CORPUS        corpus folder when no files are given
#   SLT_ENGINE        postgres (default) or postgres-extended
#   SLT_FILE_TIMEOUT  seconds per file (default 900); exceeded = FAIL (timeout)
#   SLT_START_TIMEOUT seconds to wait for the demo to answer (default 60)
#   SLT_STOP_TIMEOUT  seconds to wait for the demo to exit after SIGINT before SIGKILL (default 75)
#   SLT_VERBOSE       1: print the runner's error output for failed files
#   SLT_LOG_DIR       keep per-file runner and demo logs here (default: temp dir, removed)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESSERA=${TESSERA_BIN:-$ROOT/target/debug/tessera}
CORPUS=${SLT_CORPUS:-/work/shared/suites/slt-public}
if [ -n "${SLT_BIN:-}" ]; then
  BIN=$SLT_BIN
elif [ -x /tmp/slt/bin/sqllogictest ]; then
  BIN=/tmp/slt/bin/sqllogictest
else
  BIN=sqllogictest
fi
ENGINE=${SLT_ENGINE:-postgres}
TMO=${SLT_FILE_TIMEOUT:-900}
START_TMO=${SLT_START_TIMEOUT:-60}
STOP_TMO=${SLT_STOP_TIMEOUT:-75}
RESET_SQL='SELECT 1'

[ -x "$TESSERA" ] || { echo "tessera binary not found: $TESSERA (cargo build -p tessera)" >&2; exit 2; }
command -v "$BIN" >/dev/null 2>&1 || { echo "runner not found: $BIN (cargo install sqllogictest-bin --root /tmp/slt)" >&2; exit 2; }
command -v psql >/dev/null 2>&1 || { echo "psql not found" >&2; exit 2; }

if [ $# -gt 0 ]; then
  files=()
  for a in "$@"; do
    [ -f "$a" ] || { echo "no such file: $a" >&2; exit 2; }
    files+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")")
  done
else
  [ -d "$CORPUS" ] || { echo "no such folder: $CORPUS" >&2; exit 2; }
  mapfile -t files < <(cd "$CORPUS" && ls -1 -- *.slt 2>/dev/null | LC_ALL=C sort | sed "s|^|$CORPUS/|")
fi
[ ${#files[@]} -gt 0 ] || { echo "no .slt files" >&2; exit 2; }

if [ -n "${SLT_LOG_DIR:-}" ]; then
  WORK=$SLT_LOG_DIR; mkdir -p "$WORK"; KEEP=1
else
  WORK=$(mktemp -d); KEEP=0
fi
DEMO_PID=
DEMO_LOG=
RUN_PID=

stop_demo() {
  [ -n "$DEMO_PID" ] || return 0
  local n store
  if kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -INT "$DEMO_PID" 2>/dev/null
    # the demo gives each node up to 20s to shut down
    for ((n = 0; n < STOP_TMO * 10; n++)); do
      kill -0 "$DEMO_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$DEMO_PID" 2>/dev/null; then
      kill -KILL "$DEMO_PID" 2>/dev/null
      echo "    note: demo did not exit within ${STOP_TMO}s of SIGINT; killed" >&2
      # a killed demo leaves its temporary stores behind
      store=$(sed -n 's/^starting .* (stores under \(.*\))\.\.\.$/\1/p' "$DEMO_LOG" 2>/dev/null | head -1)
      case $store in /tmp/tessera-demo-*|"${TMPDIR:-/tmp}"/tessera-demo-*) rm -rf -- "$store" ;; esac
    fi
  fi
  wait "$DEMO_PID" 2>/dev/null
  DEMO_PID=
}
cleanup() {
  if [ -n "$RUN_PID" ]; then
    kill -TERM "$RUN_PID" 2>/dev/null   # timeout(1) passes it on to the runner
    wait "$RUN_PID" 2>/dev/null
  fi
  stop_demo
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# a port P with P, P+1, P+2 (one per node) free
pick_port() {
  local p i ok
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
    ok=1
    for i in 0 1 2; do port_free $((p + i)) || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$p"; return 0; }
  done
  return 1
}

start_demo() { # $1 = port, $2 = log; sets DEMO_PID; returns 0 when SQL answers
  local port=$1 log=$2 deadline
  "$TESSERA" demo --no-shell --nodes 3 --sql-port "$port" </dev/null >"$log" 2>&1 &
  DEMO_PID=$!
  DEMO_LOG=$log
  deadline=$(( $(date +%s) + START_TMO ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$DEMO_PID" 2>/dev/null || return 1
    # the SQL port answers before the cluster is bootstrapped: wait for the banner too
    if grep -q '^Tessera demo cluster:' "$log" && PGCONNECT_TIMEOUT=3 timeout 10 psql -X -q -t -A "postgres://root@127.0.0.1:$port/defaultdb" -c 'select 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.3
  done
  return 1
}

pass=0
fail=0
for path in "${files[@]}"; do
  f=$(basename "$path")
  log="$WORK/$f.log"
  dlog="$WORK/$f.demo.log"
  : >"$log"
  start=$(date +%s)
  why=
  rc=1
  started=0
  for attempt in 1 2 3; do                # retry on a port race / slow start
    port=$(pick_port) || { why="no free port"; break; }
    if start_demo "$port" "$dlog"; then started=1; break; fi
    stop_demo
    why="demo did not answer within ${START_TMO}s (see demo log)"
  done
  if [ $started = 1 ]; then
    why=
    common=(-e "$ENGINE" -h 127.0.0.1 -p "$port" -u root -w "" -d defaultdb --label postgresql --color never)
    printf 'statement ok\n%s\n' "$RESET_SQL" >"$WORK/reset.slt"
    "$BIN" "${common[@]}" "$WORK/reset.slt" >"$log" 2>&1
    # in the background + wait, so that a signal to this script is handled at once
    RUST_BACKTRACE=0 timeout -k 10 "$TMO" "$BIN" "${common[@]}" "$path" >>"$log" 2>&1 &
    RUN_PID=$!
    wait "$RUN_PID"
    rc=$?
    RUN_PID=
    if [ $rc -ne 0 ] && ! kill -0 "$DEMO_PID" 2>/dev/null; then
      why="exit $rc, demo process died (crash)"
    elif [ $rc -ne 0 ] && grep -q 'failed: db error' "$log"; then
      # the runner prints only "db error": replay the failing SQL with psql on the same
      # cluster (the runner stops the file at that record) to record the server's message
      sql=$(awk '/^ *\[SQL\] /{on=1; sub(/^ *\[SQL\] /,""); print; next}
                 on && /^ *at .*\.slt:[0-9]+/{exit}
                 on{sub(/^        /,""); print}' "$log")
      if [ -n "$sql" ]; then
        msg=$(PGCONNECT_TIMEOUT=10 timeout 60 psql -X -q -v VERBOSITY=verbose \
                "postgres://root@127.0.0.1:$port/defaultdb" -c "$sql" 2>&1 >/dev/null | grep -m2 -E '^(ERROR|FATAL|psql)')
        [ -n "$msg" ] && printf 'server error on replay: %s\n' "$msg" | tr '\n' ' ' >>"$log" && echo >>"$log"
      fi
    fi
    stop_demo
  fi
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
    printf 'PASS %s (%ss)\n' "$f" "$secs"
  else
    fail=$((fail + 1))
    if [ -z "$why" ]; then
      if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="timeout after ${TMO}s"; else why="exit $rc"; fi
    fi
    printf 'FAIL %s (%ss, %s)\n' "$f" "$secs" "$why"
    if [ "${SLT_VERBOSE:-0}" = "1" ]; then
      grep -v '^+ \|^\[TEST IN PROGRESS\]\|Finished in\|Discovered Test' "$log" | head -40 | sed 's/^/    /'
      if [ $started = 0 ] || [[ $why == *crash* ]]; then tail -20 "$dlog" | sed 's/^/    demo: /'; fi
    else
      grep -m1 -E 'at .*\.slt:[0-9]+' "$log" | sed 's/^ */    /'
      grep -m1 '^server error on replay' "$log" | sed 's/^/    /'
    fi
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
