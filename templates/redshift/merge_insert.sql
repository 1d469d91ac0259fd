{#- ...and insert the ones whose last change is not a delete: no row of NULLs, ever. -#}
INSERT INTO {{ t.name | ident }} ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
SELECT {% for c in t.columns %}s.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM _tm_src AS s
WHERE s._tidemark_op <> 'd'
