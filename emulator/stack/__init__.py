"""The whole box on one PC: a supervisor that runs gateway, virtual dongles, daemon and TV app.

`tvpay-emulator up` (see ``emulator.stack.cli``) starts every part as a child process (the TV app
runs in the supervisor's own main thread, because Kivy wants it), keeps their logs, and exposes the
automation API of ``emulator.automation``.
"""
