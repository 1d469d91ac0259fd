{#- Undoes the trial (merge_trial_begin). -#}
ROLLBACK TO SAVEPOINT _tm_trial
