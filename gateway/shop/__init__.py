"""The shop downstairs (代售点): a household of kind ``shop`` sells prepaid electricity to any
account from its float (its wallet), earning a commission on each sale (docs/gateway.md §1.10)."""
