#!/usr/bin/env bash
# The benchmarks (see bench/README.md): the foundation (reads, mutations), kube (issue 3), jobs and jobs-memory (issue 4),
# ansible (overhead), ansible-large and events (issue 5). It:
#   1. builds the server, KubeSim and the benchmark in Release,
#   2. prints the machine (nproc, CPU model, memory),
#   3. starts its own PostgreSQL 15 on 127.0.0.1 in a temp dir, as scripts/test.sh does,
#   4. runs bench/Opsgate.Bench on SQLite (every scenario), then on PostgreSQL (all but kube and ansible-large); each run
#      starts its own Opsgate process (and KubeSim for kube; one more Opsgate with a playbook directory for the ansible
#      scenarios, and on PostgreSQL a second one on the same database for the ansible scenario's shards; they run real ansible-playbook: Debian's ansible package, as scripts/test.sh installs it),
#   5. stops PostgreSQL (also on failure or Ctrl-C) and exits non-zero if a run FAILED.
# Extra arguments go to both runs (e.g. --duration 5 --rounds 3; a later --only replaces the PostgreSQL run's, so
# `bench/run.sh --only ansible,ansible-large` runs exactly those two on SQLite and on PostgreSQL).
# A scenario name first runs only that scenario on both databases: bench/run.sh events (about 2 minutes).
# Output is also kept in bench/results/.
#
# Environment:
#   OPSGATE_BENCH_PG_PORT  PostgreSQL port (default 55440)
#   BENCH_PG_DURABLE=1     run PostgreSQL with fsync, synchronous_commit and full_page_writes on (its defaults)
#                          instead of scripts/test.sh's fsync=off synchronous_commit=off full_page_writes=off
#   BENCH_KUBE_CONSTANT=1  also run kube on SQLite with constant replicas (KubeSim's controller idle); about 1 more minute
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  reads|mutations|kube|jobs|jobs-memory|jobs-list|events|ui) only=$1; shift; set -- --only "$only" "$@" ;;
esac
ROOT=$(pwd)

log() { printf '== %s\n' "$*" >&2; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/pg_ctl" ]; then
  log "PostgreSQL 15 is missing: apt-get install postgresql (scripts/test.sh installs it too)"
  exit 1
fi

# --- 1. build -----------------------------------------------------------------------------------
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log "dotnet build -c Release"
dotnet build "$ROOT/bench/Opsgate.Bench/Opsgate.Bench.csproj" -c Release --nologo -v q >/dev/null
dotnet build "$ROOT/tests/KubeSim/KubeSim.csproj" -c Release --nologo -v q >/dev/null
BENCH_DLL="$ROOT/bench/Opsgate.Bench/bin/Release/net10.0/opsgate-bench.dll"

mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$OUT") 2>&1

# --- 2. the machine -----------------------------------------------------------------------------
echo "## machine"
echo "nproc: $(nproc)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
free -g
echo "load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src bench || echo ' (with uncommitted changes)')"

# --- 3. PostgreSQL on loopback, in a temp dir ---------------------------------------------------
PG_PORT=${OPSGATE_BENCH_PG_PORT:-55440}
if [ "${BENCH_PG_DURABLE:-0}" = 1 ]; then
  PG_SETTINGS="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
else
  PG_SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
PGD=$(mktemp -d /tmp/opsgate-bench-pg.XXXXXX)
pg_started=0
cleanup() {
  if [ "$pg_started" = 1 ]; then
    log "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PGD/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGD"
}
trap cleanup EXIT INT TERM
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PGD"; fi

log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT ($PG_SETTINGS)"
as_pg "$PG_BIN/initdb" -D "$PGD/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
if ! as_pg "$PG_BIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGD $PG_SETTINGS -c max_connections=300" \
  start >/dev/null; then
  log "PostgreSQL did not start (is port $PG_PORT taken? set OPSGATE_BENCH_PG_PORT); its log:"
  tail -5 "$PGD/server.log" >&2
  exit 1
fi
pg_started=1
echo "postgresql: $("$PG_BIN/postgres" --version), $PG_SETTINGS -c max_connections=300, other settings at their defaults"

# --- 4. the runs --------------------------------------------------------------------------------
rc=0
echo
echo "## SQLite"
dotnet "$BENCH_DLL" "$@" || rc=1
if [ "${BENCH_KUBE_CONSTANT:-0}" = 1 ]; then
  echo
  echo "## SQLite, kube with constant replicas"
  dotnet "$BENCH_DLL" "$@" --only kube --kube-replicas constant || rc=1
fi
echo
echo "## PostgreSQL"
dotnet "$BENCH_DLL" --postgres "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Pooling=true" \
  --only reads,mutations,jobs,jobs-memory,ansible,events,ui "$@" || rc=1
echo
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
log "output kept in ${OUT#"$ROOT"/}"
exit $rc
