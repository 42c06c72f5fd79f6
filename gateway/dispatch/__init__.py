"""``tvpay-gateway dispatch``: delivers the outbox's messages (gateway.outbox) to other systems,
as its own process. Several may run against one database; see docs/money.md."""
