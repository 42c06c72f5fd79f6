"""The TVPay payment gateway: bills, dongle registry, dongle-signed payments recorded exactly once.

The HTTP API is specified in docs/gateway.md; signed layouts come from the `protocol` package.
"""
