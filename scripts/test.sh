#!/usr/bin/env bash
# The one test command. On a fresh Debian 12 machine with the .NET SDK it:
#   1. installs what the tests need from apt when missing (PostgreSQL, promtool, git, kubectl, ansible,
#      OpenSSH server for the Ansible SSH targets, bubblewrap for the run sandbox, Chromium for the browser tests),
#      and the OpenAPI validator from npm into .tools/ (pinned by scripts/openapi-validator/package-lock.json),
#   2. starts PostgreSQL on 127.0.0.1 in a temp dir (as the postgres user: it refuses root),
#   3. runs `dotnet test` for the whole solution,
#   4. stops what it started, even on failure, and exits non-zero on any failure.
# Extra arguments go to `dotnet test` (e.g. --filter FullyQualifiedName~Audit).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) to run: $*"; return 1; fi
}

# --- 1. packages ---------------------------------------------------------------------------
need=()
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need+=(postgresql)
command -v promtool >/dev/null || need+=(prometheus)
command -v git >/dev/null || need+=(git)
# Debian's ansible brings ansible-core 2.14 and the collections (~50 s cold); its modules run on
# /usr/bin/python3, which the tests pass as ansible_python_interpreter (the python3 on PATH may be a shim).
command -v ansible-playbook >/dev/null || need+=(ansible)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v bwrap >/dev/null || need+=(bubblewrap)
# The console's browser tests (tests/.../Ui) drive Debian's Chromium through Playwright's own driver, which ships in
# its NuGet package with its Node.js; browsers cannot be downloaded here, so no `playwright install`.
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The OpenAPI document is checked by @readme/openapi-parser (tests/.../Http/OpenApiTests.cs); it needs Node.js 20+.
command -v node >/dev/null || { log "installing: nodejs npm"; as_root apt-get update -qq; \
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
VALIDATOR=.tools/openapi-validator
if ! cmp -s scripts/openapi-validator/package-lock.json "$VALIDATOR/package-lock.json" \
   || [ ! -f "$VALIDATOR/node_modules/@readme/openapi-parser/package.json" ]; then
  log "installing the OpenAPI validator into $VALIDATOR"
  rm -rf "$VALIDATOR" && mkdir -p "$VALIDATOR"
  cp scripts/openapi-validator/package.json scripts/openapi-validator/package-lock.json "$VALIDATOR/"
  # Not fatal here: OpenApiTests fails with a message saying the validator is missing.
  (cd "$VALIDATOR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || log "could not install the OpenAPI validator"
fi

# kubectl is the real client the KubeSim fidelity tests drive. The machine image ships kubectl 1.32;
# Debian's kubernetes-client is only a fallback (it would conflict with the preinstalled one).
if ! command -v kubectl >/dev/null; then
  log "installing: kubernetes-client (kubectl)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null || true
fi
if ! command -v kubectl >/dev/null; then
  log "kubectl not found on PATH: the KubeSim fidelity tests (tests/KubeSim.Tests) run the real kubectl; install it and run again"
  exit 1
fi

# --- 2. PostgreSQL on loopback, in a temp dir ---------------------------------------------------
PG_PORT=${OPSGATE_TEST_PG_PORT:-25432}
PGD=$(mktemp -d /tmp/opsgate-pg.XXXXXX)
PG_BIN=/usr/lib/postgresql/15/bin
pg_started=0
cleanup() {
  if [ "$pg_started" = 1 ]; then
    log "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PGD/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGD"
}
trap cleanup EXIT INT TERM

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PGD"; fi

as_pg "$PG_BIN/initdb" -D "$PGD/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
# The default port sits below Linux's ephemeral range (32768-60999), so no outgoing connection can hold it;
# if something listens there anyway, the next ports are tried.
for attempt in 1 2 3 4 5; do
  log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT"
  if as_pg "$PG_BIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGD -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null; then
    pg_started=1
    break
  fi
  log "PostgreSQL did not start on port $PG_PORT:"; tail -n 5 "$PGD/server.log" >&2 || true
  [ "$attempt" -lt 5 ] || { log "giving up on PostgreSQL"; exit 1; }
  PG_PORT=$((PG_PORT + 1))
done
export OPSGATE_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Pooling=true"

# --- 3. the tests --------------------------------------------------------------------------------
log "dotnet test"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Quiet, but a failed test prints its message and stack trace.
dotnet test "$ROOT/Opsgate.slnx" --nologo -v q --logger "console;verbosity=minimal" "$@"
