{#- MariaDB: the binlog position the open consistent snapshot corresponds to exactly
    (`Binlog_snapshot_file`, `Binlog_snapshot_position`; empty when the binlog is off, and on
    MySQL). -#}
SHOW STATUS LIKE 'binlog\_snapshot\_%'
