"""Scenario files: scripted remote keys, faults and expected screens, run against the emulator."""
