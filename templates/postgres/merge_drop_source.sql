{#- The typed source of one table's merge; several tables merge in one transaction (a consistency group), so each drops its own before the next is built. -#}
DROP TABLE IF EXISTS pg_temp._tm_src
