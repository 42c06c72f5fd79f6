"""TVPay's wire protocol and signed-payload layouts: pure code, no I/O, no threads.

Shared by the virtual dongle, the daemon, the TV app and the gateway. The specification is
docs/protocol.md; tests/vectors/ pins the exact bytes.
"""

LINK_VERSION = 1
MESSAGE_VERSIONS = (1,)
