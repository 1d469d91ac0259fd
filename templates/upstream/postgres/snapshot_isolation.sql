{#- The snapshot's transaction reads one consistent state of the database. -#}
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ
