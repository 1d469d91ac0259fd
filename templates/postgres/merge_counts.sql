{#- This session's insert/update/delete counters of the replica (read before and after the
    MERGE: the difference is exactly what it did; PostgreSQL 15's MERGE reports only a total,
    and counting by a join would cost a good part of the merge). -#}
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = {{ t.name | ident | lit }}::regclass
