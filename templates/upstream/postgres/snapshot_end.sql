{#- Closes the snapshot's transaction (it only read). -#}
ROLLBACK
