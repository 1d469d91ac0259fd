{#- TiDB: the TSO the open transaction reads at (its start ts), the snapshot's order key. -#}
SELECT CAST(@@tidb_current_ts AS CHAR) AS ts
