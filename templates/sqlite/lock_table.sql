{#- Before recording what a batch showed of table ?1's schema: its state's version (the
    landing transaction, BEGIN IMMEDIATE, already holds the database's write lock). -#}
SELECT version FROM _tidemark_tables WHERE name = ?1
