{#- Opens the snapshot: every read of this transaction sees the database as of its first
    statement (wal_position.sql). -#}
START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
