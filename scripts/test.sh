#!/usr/bin/env bash
# tidemark's test command (the README's, and what .ci/run calls).
#
# The tests talk to real things: a PostgreSQL server (15 or newer), SQLite files, MariaDB (the
# MySQL-protocol upstream of snapshot/verify), Kafka through librdkafka's in-process mock
# cluster, and — for the fault suite — a Kafka-compatible broker process, tansu; real Debezium
# and an S3 server (moto). scripts/services.sh makes sure each is there (or fails loudly, with
# the fix); then: fmt, clippy, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings
say "cargo test"
cargo test --locked --all-targets "$@"
say "all tests passed"
