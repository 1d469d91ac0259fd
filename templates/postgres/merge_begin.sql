{#- One snapshot for the whole merge: rows landing while it runs are invisible to every
    statement below, so the cleanup cannot delete a row the MERGE did not see. -#}
BEGIN ISOLATION LEVEL REPEATABLE READ
