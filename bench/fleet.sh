#!/usr/bin/env bash
# bench/fleet.sh: imgpipe serve under agent load, on PostgreSQL and SQLite,
# with a fleet of $HOSTS hosts (default 100,000) in the catalog.
#
# For each database: a catalog seeded by bench/cmd/fleetseed, one
# `imgpipe serve` on loopback, and bench/cmd/fleetload (simulated agents,
# loopback only, every run bounded by $DURATION) measuring
#   - intake reports/s and p99 at concurrency 8 and 64,
#   - p95 of /, /hosts/NAME, /api/hosts?state=drifted and /metrics read by
#     $READERS readers while intake runs at concurrency 8, and how much the
#     reads cut intake,
#   - honest intake with 32 slow-body senders, as a share of unloaded.
# The figures measured on main before this work (issue #23) are printed
# beside them. Needs PostgreSQL's server programs (Debian postgresql).
#
#   bash bench/fleet.sh            # HOSTS=100000 DURATION=10s AGENTS=2000 READERS=2
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-100000}
DURATION=${DURATION:-10s}
AGENTS=${AGENTS:-2000}
READERS=${READERS:-2}
BACKENDS=${BACKENDS:-"postgres sqlite"}
work=$(mktemp -d /tmp/imgpipe-fleet-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/imgpipe" ./cmd/imgpipe
go build -o "$work/fleetload" ./bench/cmd/fleetload
go build -o "$work/fleetseed" ./bench/cmd/fleetseed
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
chmod 600 "$work/token"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }

declare -A today=(
  [postgres-8]="1,040 reports/s" [postgres-64]="2,230 reports/s (c=32)"
  [sqlite-8]="4,100 reports/s" [sqlite-64]="2,980 reports/s (c=32)"
)

for backend in $BACKENDS; do
  echo "== $backend, $HOSTS hosts in the catalog, $AGENTS simulated agents, runs of $DURATION (2 shared cores: expect noise)"
  if [ "$backend" = postgres ]; then
    rm -f "$work/pg.url"
    "$work/fleetseed" -postgres -url-file "$work/pg.url" -hosts "$HOSTS" &
    seedpid=$!
    pids+=("$seedpid")
    for _ in $(seq 600); do [ -s "$work/pg.url" ] && break; kill -0 "$seedpid" || exit 1; sleep 0.5; done
    loc=$(cat "$work/pg.url")
  else
    loc="$work/sqlite/catalog.db"
    "$work/fleetseed" -catalog "$loc" -hosts "$HOSTS"
  fi
  port=$(free_port)
  "$work/imgpipe" serve --catalog "$loc" --listen "127.0.0.1:$port" --agent-token-file "$work/token" 2>"$work/serve-$backend.log" &
  servepid=$!
  pids+=("$servepid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  load=("$work/fleetload" -server "http://127.0.0.1:$port" -token-file "$work/token" -hosts "$AGENTS" -creds "$work/creds-$backend.json" -duration "$DURATION")
  for c in 8 64; do
    "${load[@]}" -concurrency "$c" | sed "s/^/  /"
    echo "    today (main before #23): ${today[$backend-$c]}"
  done
  echo "  reads while intake runs ($READERS readers):"
  "${load[@]}" -concurrency 8 -readers "$READERS" -read "/,/hosts/seed-050001,/api/hosts?state=drifted,/metrics" | sed "s/^/  /"
  echo "    today (main before #23): 5,000 hosts: /hosts/NAME, /api/hosts/NAME and /metrics ~440 ms each; 10 dashboard users cut intake 4.1k -> 1.7k reports/s"
  echo "  slow-body attack (32 senders holding a host credential):"
  "${load[@]}" -concurrency 8 -compare-slow 32 | sed "s/^/  /"
  echo "    today (main before #23): 64/64 honest reports answered 503 for 20 s"
  kill "$servepid"
  wait "$servepid" 2>/dev/null || true
  if [ "$backend" = postgres ]; then kill "$seedpid"; wait "$seedpid" 2>/dev/null || true; fi
done
