"""The virtual dongle as a USB device: descriptors, bulk endpoints with packet semantics, fault
injection, a virtual bus with plug/unplug, and pyusb backends (in-process and the virtual cable)."""
