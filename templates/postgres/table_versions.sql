{#- Every registered table's state version: a process whose cached copy is older reloads it. -#}
SELECT name, version FROM _tidemark_tables
