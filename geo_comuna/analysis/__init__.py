"""Planning analyses: each a parameters model plus run(conn, params) -> result."""
