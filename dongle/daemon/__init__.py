"""tvpay-dongled: the one process on the box that owns the payment dongle and serves local clients."""
