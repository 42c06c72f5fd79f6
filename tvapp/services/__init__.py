"""Services of the app (gateway, dongle daemon, payments). No Kivy here: they run on worker
threads and are tested without a window."""
