{#- Removes a refused staged row (?1: its _tm_seq) once it is a dead letter. -#}
DELETE FROM {{ t.staging | ident }} WHERE _tm_seq = ?1
