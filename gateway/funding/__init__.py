"""Funding sources: where a household's payments take their money from (its prepaid wallet, or a
bank card under a direct-debit mandate), and the staff actions that move wallet money."""
