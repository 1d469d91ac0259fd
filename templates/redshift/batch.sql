{#- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed. -#}
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM {{ t.staging | ident }}
