{#- `tidemark bench`: the order_line replica with keys 0..$1, as the bench's generator maps them. -#}
INSERT INTO {{ t.name | ident }} (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_delivery_d,
                                  ol_quantity, ol_amount, ol_dist_info)
SELECT k / 1000, 1 + (k / 10) % 10, 1 + k % 10, 1 + (k / 100) % 10, 1 + k % 100000, 1 + k % 10,
       timestamp '2026-01-01' + k * interval '1 second', 1 + k % 10, (k % 1000000) / 100.0, md5(k::text)
FROM generate_series(0::bigint, $1 - 1) AS k
