SELECT count(*) FROM _tidemark_dead_letters WHERE table_name = $1
