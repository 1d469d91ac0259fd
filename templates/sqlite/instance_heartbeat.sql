{#- A `run` process says it is alive and what it does (1 instance, 2 host, 3 pid, 4 started,
    5 now, 6 state). -#}
INSERT INTO _tidemark_instances (instance, host, pid, started_at, seen_at, state)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at, state = excluded.state
