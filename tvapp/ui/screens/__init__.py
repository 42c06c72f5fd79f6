"""The app's screens: one module of behaviour and one kv file of layout per screen."""
