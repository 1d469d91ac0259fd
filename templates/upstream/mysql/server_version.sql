{#- Which MySQL-protocol server this is: TiDB and MariaDB say so in their version. -#}
SELECT CAST(VERSION() AS CHAR) AS version
