"""The box side of the payment dongle: the daemon that owns it, its client library, the staff tool."""
