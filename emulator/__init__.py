"""The TVPay emulator: a virtual payment dongle (firmware model, USB device, pyusb backend, virtual
cable) and, alongside it, the virtual box and the one-command stack.

Nothing outside ``emulator`` and the tests imports this package: the daemon reaches the virtual
dongle through a pyusb backend named in its configuration (see ``dongle.usblink.load_backend``).
"""
