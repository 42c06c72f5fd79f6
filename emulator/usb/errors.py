"""USB errors as libusb reports them through pyusb, so host code cannot tell the emulator apart."""

from __future__ import annotations

import errno

from usb.core import USBError, USBTimeoutError

# libusb error codes (libusb.h) and the errno pyusb's libusb1 backend pairs with them.
LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_INVALID_PARAM = -2
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_OVERFLOW = -8
LIBUSB_ERROR_PIPE = -9

_ERRORS = {
    LIBUSB_ERROR_IO: ("Input/Output Error", errno.EIO),
    LIBUSB_ERROR_INVALID_PARAM: ("Invalid parameter", errno.EINVAL),
    LIBUSB_ERROR_NO_DEVICE: ("No such device (it may have been disconnected)", errno.ENODEV),
    LIBUSB_ERROR_TIMEOUT: ("Operation timed out", errno.ETIMEDOUT),
    LIBUSB_ERROR_OVERFLOW: ("Overflow", errno.EOVERFLOW),
    LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
}


def usb_error(code: int) -> USBError:
    """The exception pyusb's libusb1 backend raises for libusb error ``code``."""
    text, number = _ERRORS.get(code, _ERRORS[LIBUSB_ERROR_IO])
    cls = USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else USBError
    return cls(text, code, number)


def no_device() -> USBError:
    return usb_error(LIBUSB_ERROR_NO_DEVICE)


def timed_out() -> USBError:
    return usb_error(LIBUSB_ERROR_TIMEOUT)


def pipe_error() -> USBError:
    return usb_error(LIBUSB_ERROR_PIPE)
