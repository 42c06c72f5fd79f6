"""A utility's billing system, simulated: it receives the gateway's signed write-off notifications
(销账), keeps its own SQLite database of accounts, bills and write-offs, answers statements, and
lets a tester inject faults. It runs as its own process (``python -m emulator.utility serve``)."""
