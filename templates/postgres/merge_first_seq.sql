{#- The first staged row a merge up to the watermark ($1) reads: where the search for refused rows starts. -#}
SELECT min(_tm_seq) AS first_seq FROM {{ t.staging | ident }} WHERE _tm_seq <= $1
