#!/bin/sh
# Installs the Debian packages the project needs for its tests and demo, when missing.
# Runs apt-get only as root; otherwise it names what is missing and carries on, so a developer
# without root still gets everything that does not need those packages.
set -eu

# Test tools and services, then what the installed Debian packages run on (tests/packaging runs the
# installed programs with Debian's own python3 and libraries, as a real box would).
PACKAGES="fontconfig fonts-wqy-microhei libgl1-mesa-dri libegl1 libusb-1.0-0 postgresql \
chromium chromium-driver lintian dpkg-dev fakeroot systemd \
python3-usb python3-pyudev python3-requests python3-kivy python3-qrcode python3-pil python3-babel \
python3-evdev python3-rich libmtdev1 libpq5"
# The arm64 box package: cross binutils and arm64's libc for its build (strip, dpkg-shlibdeps
# through dpkg's multiarch), and qemu with binfmt to install and run it in an arm64 root.
FOREIGN_ARCH=arm64
PACKAGES="$PACKAGES binutils-aarch64-linux-gnu libc6:$FOREIGN_ARCH libgcc-s1:$FOREIGN_ARCH \
qemu-user-static binfmt-support mmdebstrap arch-test"

# Child processes of an emulated program are emulated too only through binfmt_misc.
if [ "$(id -u)" -eq 0 ] && [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
        echo "system-deps: cannot mount binfmt_misc: the arm64 package tests will be skipped" >&2
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages:$missing" >&2
    echo "system-deps: run 'sudo apt-get install$missing' (tests needing them will fail)" >&2
    exit 0
fi

echo "system-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx "$FOREIGN_ARCH"; then
    dpkg --add-architecture "$FOREIGN_ARCH"
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
