"""The automation API: drive the emulated box over HTTP (keys, screen, screenshots, faults).

``api.create_app(box)`` builds the FastAPI application over anything implementing ``box.Box``;
``server.AutomationServer`` runs it on a background thread; ``client.AutomationClient`` is the
typed client used by scenarios, tests and benchmarks. The endpoints are documented in
docs/emulator.md ("The whole box").
"""
