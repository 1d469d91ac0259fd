SELECT count(*) AS dead_letters FROM _tidemark_dead_letters WHERE table_name = ?1
