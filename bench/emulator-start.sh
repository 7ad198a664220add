#!/usr/bin/env bash
# Side-by-side start-up time of the two local emulators imgpipe's tests and
# demo use: `imgpipe emulator` (ARM, TLS, in Go) and Azurite's blob service
# (node), from process start until each accepts requests.
#
# Needs: go, node and node_modules (npm ci). Environment: BENCH_RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgpipe-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

go build -o "$WORK/imgpipe" ./cmd/imgpipe
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms() { date +%s%3N; }

wait_port() { # port pid
  for _ in $(seq 1 3000); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.005
  done
  return 1
}

run() { # name command...
  local name=$1; shift
  local total=0
  for ((i = 0; i < RUNS; i++)); do
    local port; port=$(free_port)
    local cmd=("${@//PORT/$port}")
    local t0; t0=$(ms)
    setsid "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    wait_port "$port" "$pid" || { echo "$name did not start:"; cat "$WORK/$name.log"; exit 1; }
    local t1; t1=$(ms)
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    total=$((total + t1 - t0))
  done
  printf '%-28s %6d ms (mean of %d)\n' "$name" $((total / RUNS)) "$RUNS"
}

run "imgpipe emulator" "$WORK/imgpipe" emulator --listen 127.0.0.1:PORT
run "azurite-blob (in memory)" node_modules/.bin/azurite-blob --inMemoryPersistence --blobHost 127.0.0.1 --blobPort PORT --silent
