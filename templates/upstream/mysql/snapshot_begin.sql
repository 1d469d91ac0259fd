{#- Opens the snapshot: every read of this transaction sees the database as of this instant. -#}
START TRANSACTION WITH CONSISTENT SNAPSHOT
