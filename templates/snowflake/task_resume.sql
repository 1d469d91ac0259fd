ALTER TASK {{ task | ident }} RESUME
