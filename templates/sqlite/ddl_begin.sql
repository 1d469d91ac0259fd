{#- Registering a table and creating its staging table, under the write lock. -#}
BEGIN IMMEDIATE
