{%- import "postgres/macros.sql" as m -%}
{#- Delete when the last change is a delete (a delete of an absent key matches nothing:
    no row of NULLs is ever inserted), update when matched, insert otherwise. -#}
MERGE INTO {{ t.name | ident }} AS t
USING _tm_src AS s
ON {{ m.key_match(t, "t", "s") }}
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
{%- if t.non_key %}
WHEN MATCHED THEN
    UPDATE SET {% for c in t.non_key %}{{ c.name | ident }} = {{ m.merged(c, t.partial_rows, "s", "t") }}{% if not loop.last %},
               {% endif %}{% endfor %}
{%- else %}
WHEN MATCHED THEN
    DO NOTHING
{%- endif %}
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
    VALUES ({% for c in t.columns %}s.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
