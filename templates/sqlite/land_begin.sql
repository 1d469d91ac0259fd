{#- Landing takes the write lock first, then reads the offsets it must not land below. -#}
BEGIN IMMEDIATE
