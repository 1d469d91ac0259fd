{#- A trial within a merge that failed on its data: undone by merge_trial_end whatever it did. -#}
SAVEPOINT _tm_trial
