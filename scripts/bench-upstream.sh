#!/usr/bin/env bash
# Snapshot and verify against the limits of this machine (BENCHMARKS.md, "Snapshot and verify"):
#   - snapshot: the upstream's own full-table read of the same columns (the mysql client, output
#     discarded) and PostgreSQL's binary COPY of the staging rows the snapshot wrote;
#   - verify: a full scan of both sides (the same upstream read, and the replica's rows as text).
# tidemark's peak RSS is measured for each N, to show it flat in N.
#
#   ./scripts/bench-upstream.sh                 # N = 100,000 and 400,000
#   ./scripts/bench-upstream.sh 50000           # one N
#   KEEP=1 ./scripts/bench-upstream.sh 50000    # and keep its databases, to look further
#
# It uses the tests' MariaDB and PostgreSQL (scripts/services.sh) and the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
cargo build --release --locked
bin=$PWD/target/release/tidemark
out=target/bench/upstream
mkdir -p "$out"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 400000)

mysql_cmd() { mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot "$@"; }
pg_base=${TIDEMARK_TEST_PG_URL%/*}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }
peak_kib() { sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$1"; }

# The table of tests/upstream.rs: every MySQL type tidemark maps.
item_ddl="CREATE TABLE item (id BIGINT NOT NULL PRIMARY KEY, t_tiny TINYINT, t_small SMALLINT UNSIGNED, t_int INT,
  t_ubig BIGINT UNSIGNED, t_dec DECIMAL(30,10), t_float FLOAT, t_double DOUBLE, t_char CHAR(4), t_varchar VARCHAR(40),
  t_text TEXT, t_bin BINARY(3), t_varbin VARBINARY(20), t_blob BLOB, t_bit BIT(10), t_enum ENUM('red','green','blue'),
  t_set SET('a','b','c'), t_date DATE, t_time TIME(3), t_dt DATETIME(6), t_ts TIMESTAMP(3) NULL, t_year YEAR, t_json JSON)"
s="CAST(seq AS SIGNED)"
gen="$s, $s % 256 - 128, $s % 65536, $s * 7 - 700000, 18446744073709551615 - $s,
  CAST(CONCAT($s, '.', LPAD($s * 7919 % 10000000000, 10, '0')) AS DECIMAL(30,10)), $s / 7, $s / 3 + 0.1e0,
  LEFT(CONCAT('c', $s), 4), IF($s % 11 = 0, NULL, CONCAT('name ', $s)), REPEAT('t', $s % 50),
  UNHEX(LPAD(HEX($s % 16777216), 6, '0')), UNHEX(HEX($s)), IF($s % 5 = 0, NULL, UNHEX(MD5($s))), $s % 1024,
  1 + $s % 3, $s % 8, '2024-01-01' + INTERVAL $s % 3000 DAY, SEC_TO_TIME($s * 13 % 6040798 - 3020399 + 0.25),
  TIMESTAMP('2020-01-01') + INTERVAL $s * 1000003 MICROSECOND, IF($s % 13 = 0, NULL, FROM_UNIXTIME(1600000000 + $s + 0.125)),
  1901 + $s % 255, JSON_OBJECT('n', $s, 's', CONCAT('x', $s))"
# What tidemark's snapshot reads (templates/upstream/mysql/chunk.sql), all at once.
read_sql="SELECT id, CAST(t_tiny AS CHAR), CAST(t_small AS CHAR), CAST(t_int AS CHAR), CAST(t_ubig AS CHAR),
  CAST(t_dec AS CHAR), CAST(CAST(t_float AS DOUBLE) AS CHAR), CAST(t_double AS CHAR), CAST(t_char AS CHAR),
  CAST(t_varchar AS CHAR), CAST(t_text AS CHAR), t_bin, t_varbin, t_blob, CAST(t_bit + 0 AS CHAR), CAST(t_enum AS CHAR),
  CAST(t_set AS CHAR), CAST(t_date AS CHAR), CAST(t_time AS CHAR), CAST(t_dt AS CHAR), CAST(t_ts AS CHAR),
  CAST(t_year AS CHAR), CAST(t_json AS CHAR) FROM item ORDER BY id"

printf '| N | upstream read | snapshot | PG COPY of its staging rows | snapshot / read | snapshot / COPY | snapshot RSS | verify (2 passes) | both sides scanned | verify / scans | verify RSS |\n' > "$out/results.md"
printf '|---|---|---|---|---|---|---|---|---|---|---|\n' >> "$out/results.md"
for n in "${sizes[@]}"; do
  db="tidemark_bench_up_$$_$n"
  wh="tidemark_bench_$$_up$n"
  say "N = $n: loading $db"
  mysql_cmd -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db; USE $db; $item_ddl; INSERT INTO item SELECT $gen FROM seq_1_to_$n"
  psql "$TIDEMARK_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $wh" -c "CREATE DATABASE $wh"
  cfg="$out/tidemark-$n.toml"
  cat > "$cfg" <<EOF
[warehouse]
url = "$pg_base/$wh"
[upstream]
url = "mysql://root@127.0.0.1:3306/$db"
chunk_rows = 10000
[[tables]]
name = "item"
topic = "tidb_${db}_item"
EOF
  t0=$(now); mysql_cmd -N -e "SET time_zone = '+00:00'; $read_sql" "$db" > /dev/null; t1=$(now)
  /usr/bin/time -v "$bin" --config "$cfg" snapshot --table item > "$out/snapshot-$n.txt" 2> "$out/snapshot-$n.time"
  t2=$(now)
  # PostgreSQL's own COPY of the rows the snapshot staged, into a table of the same shape.
  psql "$pg_base/$wh" -qc "COPY (SELECT _tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row FROM _tidemark_stage_item) TO '/tmp/tidemark-bench-up.bin' WITH (FORMAT binary)" \
    -c "CREATE TABLE copy_target (LIKE _tidemark_stage_item INCLUDING ALL)"
  t3=$(now)
  psql "$pg_base/$wh" -qc "COPY copy_target (_tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row) FROM '/tmp/tidemark-bench-up.bin' WITH (FORMAT binary)"
  t4=$(now)
  "$bin" --config "$cfg" merge --table item > /dev/null
  t5=$(now)
  /usr/bin/time -v "$bin" --config "$cfg" verify --table item --settle 0 > "$out/verify-$n.txt" 2> "$out/verify-$n.time"
  t6=$(now)
  mysql_cmd -N -e "SET time_zone = '+00:00'; $read_sql" "$db" > /dev/null
  psql "$pg_base/$wh" -qAtc "SELECT item::text FROM item ORDER BY id" > /dev/null
  t7=$(now)
  grep -q ": equal" "$out/verify-$n.txt" || die "verify found differences: $out/verify-$n.txt"
  printf '| %s | %s s | %s s (%s rows/s) | %s s | %s | %s | %s MiB | %s s (%s rows/s) | %s s | %s | %s MiB |\n' \
    "$n" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(rate "$n" "$t1" "$t2")" "$(secs "$t3" "$t4")" \
    "$(python3 -c "print(f'{($t1-$t0)/($t2-$t1):.2f}')")" "$(python3 -c "print(f'{($t4-$t3)/($t2-$t1):.2f}')")" \
    "$(( $(peak_kib "$out/snapshot-$n.time") / 1024 ))" "$(secs "$t5" "$t6")" "$(rate "$n" "$t5" "$t6")" \
    "$(secs "$t6" "$t7")" "$(python3 -c "print(f'{($t7-$t6)/($t6-$t5):.2f}')")" \
    "$(( $(peak_kib "$out/verify-$n.time") / 1024 ))" >> "$out/results.md"
  [ -n "${KEEP:-}" ] && { say "kept: $cfg"; continue; }
  mysql_cmd -e "DROP DATABASE $db"
  psql "$TIDEMARK_TEST_PG_URL" -qc "DROP DATABASE $wh WITH (FORCE)"
  rm -f /tmp/tidemark-bench-up.bin
done
cat "$out/results.md"
