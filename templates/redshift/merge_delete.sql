{#- Redshift's MERGE takes no conditions on its WHEN clauses: remove every key the batch touches
    (a delete of an absent key matches nothing)... -#}
DELETE FROM {{ t.name | ident }}
USING _tm_src AS s
WHERE {% for c in t.key %}{{ t.name | ident }}.{{ c.name | ident }} = s.{{ c.name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}
