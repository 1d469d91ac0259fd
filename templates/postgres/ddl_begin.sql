{#- Registering a table and creating its staging table: READ COMMITTED, so that what another
    instance registered while this one waited for the DDL lock is seen, not a conflict. -#}
BEGIN
