"""The web remote: a page showing the live TV screen with a clickable remote (served at ``/``)."""
