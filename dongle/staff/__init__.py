"""`tvpay-dongle`: the telecom staff's tool to check, provision, unblock, reset and revoke dongles.

It reaches the dongles through the daemon's client library (never USB directly) and the gateway
through its staff API. docs/staff-guide.md walks staff through a bench session.
"""
