{#- One merge, in one transaction: the replica changes and the staging cleanup commit together
    or not at all. -#}
BEGIN
