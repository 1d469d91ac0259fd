{#- Landing: READ COMMITTED; the offset rows of the batch's partitions are locked first. -#}
BEGIN
