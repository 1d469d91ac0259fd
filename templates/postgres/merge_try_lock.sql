SELECT pg_try_advisory_lock($1, $2) AS held
