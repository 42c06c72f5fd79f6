"""The dongle as its firmware would be written: a state machine with an injected clock and a
persistent store, no sockets and no threads, so the logic could be ported to a microcontroller."""
