{#- Which server this is. -#}
SELECT version() AS version
