"""Builds the project's Debian packages from a staged tree with dpkg-deb (see packaging/build_deb.py)."""
