{#- A table's recorded key, why its merges are stopped (if they are) and its state's version. -#}
SELECT key_columns, stopped, version FROM _tidemark_tables WHERE name = ?1
