"""Database layer: schema, engine set-up for SQLite and PostgreSQL, transactions with retry."""
