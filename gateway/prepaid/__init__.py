"""Prepaid electricity (买电): meters, the utilities' rules and tariffs, purchases and their
fulfilment (docs/gateway.md §1.9)."""
