"""Tests of the virtual dongle, its USB device, backends and the host USB link."""
