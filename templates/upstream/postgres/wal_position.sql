{#- Where the WAL is as the snapshot's transaction takes its snapshot (its first statement):
    the point a Debezium stream must hold every change from (a standby: where it has replayed). -#}
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn
