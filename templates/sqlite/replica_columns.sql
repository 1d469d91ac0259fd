{#- The replica's existing columns (?1 = table name). -#}
SELECT name FROM pragma_table_info(?1) ORDER BY cid
