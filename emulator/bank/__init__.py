"""The bank simulator: card accounts with balances, direct debits keyed by the caller's
idempotency key, reversals, a daily settlement file and fault controls, in its own process with
its own SQLite database (docs/emulator.md, "The bank simulator")."""
