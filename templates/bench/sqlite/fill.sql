{#- `tidemark bench`: the order_line replica with keys 0..?1, as the bench's generator maps them. -#}
WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k + 1 < ?1)
INSERT INTO {{ t.name | ident }} (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_delivery_d,
                                  ol_quantity, ol_amount, ol_dist_info)
SELECT k / 1000, 1 + (k / 10) % 10, 1 + k % 10, 1 + (k / 100) % 10, 1 + k % 100000, 1 + k % 10,
       datetime('2026-01-01', '+' || k || ' seconds'), 1 + k % 10, printf('%.2f', (k % 1000000) / 100.0),
       printf('%024d', k)
FROM n
