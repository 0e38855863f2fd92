"""Database access: the embedded cluster, the connection pool and migrations."""
