{#- The snapshot's transaction reads one consistent state of the database. -#}
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ
