SELECT EXISTS (SELECT 1 FROM {{ t.staging | ident }}) AS staged
