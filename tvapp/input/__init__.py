"""Remote-control input: every key source (PC keyboard, the remote's evdev device, the
automation API) is turned into the same small set of app actions."""
