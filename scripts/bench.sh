#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md, in one command: tidemark against PostgreSQL's COPY and one
# hand-written MERGE (and SQLite's own limits), freshness at a steady rate, memory — for
# N = 100,000 and N = 1,000,000 changes, 3 runs each, on this machine; then snapshot and verify
# (scripts/bench-upstream.sh).
#
#   ./scripts/bench.sh                     # both sizes
#   ./scripts/bench.sh --changes 2000 --runs 1 --freshness-secs 5 --rate 1000   # a quick look
#
# It uses the same PostgreSQL and tansu as the tests (scripts/services.sh), starts a broker of
# its own on a free port, builds the release binary, and writes each result table to
# target/bench/results-<N>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p target/bench
"$TIDEMARK_TANSU" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" >target/bench/tansu.log 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
sleep 2
kill -0 $broker 2>/dev/null || die "tansu did not start: see target/bench/tansu.log"

say "building the release binary"
cargo build --release --locked

run() {
  say "tidemark bench $*"
  ./target/release/tidemark bench --brokers "127.0.0.1:$port" --postgres "$TIDEMARK_TEST_PG_URL" "$@"
}
# A missed target makes the bench exit non-zero; both sizes still run.
missed=0
if [ $# -gt 0 ]; then
  run "$@" || missed=1
else
  for n in 100000 1000000; do
    run --changes "$n" | tee "target/bench/results-$n.md" || missed=1
  done
fi
# Snapshot and verify against their limits (BENCHMARKS.md), when the whole bench runs.
if [ $# -eq 0 ]; then
  ./scripts/bench-upstream.sh | tee target/bench/results-upstream.md
fi
[ "$missed" = 0 ] || say "some targets were missed (see the tables above)"
exit "$missed"
