{#- TiDB: later reads of this session see the latest data again. -#}
SET @@tidb_snapshot = ''
