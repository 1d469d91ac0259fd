{#- Take the write lock up front: landing (in this or another process) waits, so the
    watermark, the apply and the cleanup all see the same rows. -#}
BEGIN IMMEDIATE
