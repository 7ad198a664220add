#!/usr/bin/env bash
# bench/fleet.sh: imgpipe serve under agent load, on PostgreSQL and SQLite,
# with a fleet of $HOSTS hosts (default 100,000) in the catalog, this build
# side by side with a baseline build ($BASELINE, default main before the
# last intake work), in the same run.
#
# For each database and each build: a catalog seeded by that build's
# bench/cmd/fleetseed, one `imgpipe serve` on loopback, and
# bench/cmd/fleetload (simulated agents, loopback only, every run bounded
# by $DURATION) measuring
#   - sustained intake reports/s and p99 at concurrency 8 and 64,
#   - p95 of /, /hosts/NAME, /api/hosts?state=drifted and /metrics read by
#     $READERS readers while intake runs at concurrency 8, and how much the
#     reads cut intake (against the c=8 run without readers); and again
#     with $USERS paced readers, each reading a page a second (people: the
#     dashboard itself refreshes every 60 s).
# The load average is printed with every pair (2 shared cores: expect
# noise; the ratio of the two builds in one run is the figure to quote).
# Needs PostgreSQL's server programs (Debian postgresql) and python3.
#
#   bash bench/fleet.sh    # HOSTS=100000 DURATION=10s AGENTS=2000 READERS=2 USERS=10
#   BASELINE=none bash bench/fleet.sh     # this build only
#   SLOW=32 bash bench/fleet.sh           # also the slow-body attack
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-100000}
DURATION=${DURATION:-10s}
AGENTS=${AGENTS:-2000}
READERS=${READERS:-2}
USERS=${USERS:-10} # paced readers: each reads a page a second
SLOW=${SLOW:-0}
BACKENDS=${BACKENDS:-"postgres sqlite"}
BASELINE=${BASELINE:-eb03edf} # main before the PostgreSQL read budget (332b084: before session 4's fleet work; 5ef9eca: before the #23 scale work)
work=$(mktemp -d /tmp/imgpipe-fleet-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

builds=(new)
mkdir -p "$work/new"
go build -o "$work/new/imgpipe" ./cmd/imgpipe
go build -o "$work/new/fleetseed" ./bench/cmd/fleetseed
go build -o "$work/fleetload" ./bench/cmd/fleetload
if [ "$BASELINE" != none ]; then
  mkdir -p "$work/base/src"
  git archive "$BASELINE" | tar -x -C "$work/base/src"
  (cd "$work/base/src" && go build -o "$work/base/imgpipe" ./cmd/imgpipe && go build -o "$work/base/fleetseed" ./bench/cmd/fleetseed)
  builds=(base new)
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
chmod 600 "$work/token"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
reads="/,/hosts/seed-050001,/api/hosts?state=drifted,/metrics"

for backend in $BACKENDS; do
  for b in "${builds[@]}"; do
    out="$work/$backend-$b"
    mkdir -p "$out"
    echo "== $backend, $b build: seeding $HOSTS hosts (load $(load))" >&2
    seedpid=""
    if [ "$backend" = postgres ]; then
      "$work/$b/fleetseed" -postgres -url-file "$out/pg.url" -hosts "$HOSTS" &
      seedpid=$!
      pids+=("$seedpid")
      for _ in $(seq 1200); do [ -s "$out/pg.url" ] && break; kill -0 "$seedpid" || exit 1; sleep 0.5; done
      loc=$(cat "$out/pg.url")
    else
      loc="$out/catalog.db"
      "$work/$b/fleetseed" -catalog "$loc" -hosts "$HOSTS"
    fi
    port=$(free_port)
    "$work/$b/imgpipe" serve --catalog "$loc" --listen "127.0.0.1:$port" --agent-token-file "$work/token" 2>"$out/serve.log" &
    servepid=$!
    pids+=("$servepid")
    for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    L=("$work/fleetload" -server "http://127.0.0.1:$port" -token-file "$work/token" -hosts "$AGENTS" -creds "$out/creds.json" -duration "$DURATION" -json)
    "${L[@]}" -duration 3s -concurrency 8 >/dev/null # enrol the agents, warm up
    for c in 8 64; do
      echo "$(load)" >"$out/c$c.load"
      "${L[@]}" -concurrency "$c" >"$out/c$c.json"
    done
    echo "$(load)" >"$out/reads.load"
    "${L[@]}" -concurrency 8 -readers "$READERS" -read "$reads" >"$out/reads.json"
    echo "$(load)" >"$out/paced.load"
    "${L[@]}" -concurrency 8 -readers "$USERS" -read-every 1s -read "$reads" >"$out/paced.json"
    if [ "$SLOW" -gt 0 ]; then
      echo "$(load)" >"$out/slow.load"
      "${L[@]}" -concurrency 8 -compare-slow "$SLOW" >"$out/slow.json"
    fi
    kill "$servepid"
    wait "$servepid" 2>/dev/null || true
    if [ -n "$seedpid" ]; then kill "$seedpid"; wait "$seedpid" 2>/dev/null || true; fi
  done
done

python3 - "$work" "$BASELINE" "$HOSTS" "$READERS" "$BACKENDS" "${builds[*]}" "$USERS" <<'EOF'
import json, os, sys
work, baseline, hosts, readers, backends, builds, users = sys.argv[1:8]
builds = builds.split()
def phase(b, be, name, i=0):
    p = os.path.join(work, f"{be}-{b}", name + ".json")
    return json.load(open(p))[i] if os.path.exists(p) else None
def loadavg(b, be, name):
    p = os.path.join(work, f"{be}-{b}", name + ".load")
    return open(p).read().strip() if os.path.exists(p) else "?"
label = {"base": f"baseline {baseline}", "new": "this build"}
print(f"imgpipe serve, {int(hosts):,} hosts in the catalog, 2 shared cores (load average: 1, 5, 15 min at the start of each run)")
for be in backends.split():
    print(f"\n== {be}")
    hdr = f"{'':58}" + "".join(f"{label[b]:>30}" for b in builds) + ("   ratio" if len(builds) == 2 else "")
    print(hdr)
    def row(name, vals, fmt, better_high):
        cells = "".join(f"{(fmt(v) if v is not None else '-'):>30}" for v in vals)
        ratio = ""
        if len(vals) == 2 and all(isinstance(v, (int, float)) and v for v in vals):
            if better_high:
                ratio = f"   x{vals[1]/vals[0]:.2f}"
            else:  # a time: say which way it went
                ratio = f"   x{vals[0]/vals[1]:.2f} faster" if vals[1] <= vals[0] else f"   x{vals[1]/vals[0]:.2f} slower"
        print(f"{name:58}{cells}{ratio}")
    for c in (8, 64):
        ps = [phase(b, be, f"c{c}") for b in builds]
        row(f"intake c={c} reports/s", [p and p["reports_per_sec"] for p in ps], lambda v: f"{v:,.0f}", True)
        row(f"intake c={c} p99 ms", [p and p["p99_ms"] for p in ps], lambda v: f"{v:.1f}", False)
        row(f"  refused (503) / load", [f"{(p or {}).get('statuses',{}).get('503',0)} / {loadavg(b,be,f'c{c}')}" for p, b in zip(ps, builds)], str, True)
    ps = [phase(b, be, "reads") for b in builds]
    for path in ["/", "/hosts/seed-050001", "/api/hosts?state=drifted", "/metrics"]:
        row(f"read p95 ms {path} ({readers} readers)", [p and p.get("read_p95_ms", {}).get(path) for p in ps], lambda v: f"{v:.1f}", False)
    row("intake during reads, reports/s", [p and p["reports_per_sec"] for p in ps], lambda v: f"{v:,.0f}", True)
    def cuts(name):
        out = []
        for b in builds:
            base, r = phase(b, be, "c8"), phase(b, be, name)
            out.append(f"{100*(1-r['reports_per_sec']/base['reports_per_sec']):.0f}%" if base and r and base["reports_per_sec"] else "-")
        return out
    row("reads cut intake by (goal <= 20%)", cuts("reads"), str, True)
    row("  load at the read run", [loadavg(b, be, "reads") for b in builds], str, True)
    ps = [phase(b, be, "paced") for b in builds]
    for path in ["/", "/hosts/seed-050001", "/api/hosts?state=drifted", "/metrics"]:
        row(f"read p95 ms {path} ({users} users, 1/s each)", [p and p.get("read_p95_ms", {}).get(path) for p in ps], lambda v: f"{v:.1f}", False)
    row(f"{users} users cut intake by", cuts("paced"), str, True)
    row("  load at the paced run", [loadavg(b, be, "paced") for b in builds], str, True)
    if phase(builds[-1], be, "slow"):
        vals = []
        for b in builds:
            u, a = phase(b, be, "slow", 0), phase(b, be, "slow", 1)
            vals.append(100 * a["reports_per_sec"] / u["reports_per_sec"] if u and a and u["reports_per_sec"] else None)
        row("honest intake under slow-body attack, %", vals, lambda v: f"{v:.0f}%", True)
print("\ngoals (#23): PostgreSQL >= 3,000 reports/s with p99 < 100 ms; every read p95 < 100 ms at 100k hosts; reads cut intake <= 20%")
EOF
