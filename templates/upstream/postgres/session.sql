{#- Every session reads values in the forms tidemark stages: timestamptz in UTC, ISO dates,
    floats in their shortest exact text, bytea as bytes. -#}
SET TIME ZONE 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1
