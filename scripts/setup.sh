#!/usr/bin/env bash
# Installs what building, running and testing DAN needs on Debian/Ubuntu:
# system packages (WebKitGTK for the window, Xvfb and WebKitWebDriver for the
# end-to-end tests, D-Bus and GNOME Keyring for the OS keyring tests,
# libfaketime for the test of a computer whose clock is wrong, nftables and
# miniupnpd for the home routers of the NAT test lab, libayatana-appindicator
# for the tray icon, dunst, python3-xlib and gdbus for the end-to-end test of
# notifications, the tray and closing the window) and
# the UI's npm packages, and any extra Debian packages named as arguments.
# Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential pkg-config libssl-dev libdbus-1-dev libwebkit2gtk-4.1-dev
  webkit2gtk-driver xvfb xauth dbus dbus-x11 gnome-keyring libsecret-1-0 iproute2 imagemagick
  faketime nftables miniupnpd-nftables libayatana-appindicator3-1 dunst python3-xlib
  libglib2.0-bin "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: Rust is missing; install it from https://rustup.rs and run again" >&2
  exit 1
fi

if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "setup: installing tauri-driver (WebDriver for the end-to-end tests)"
  cargo install tauri-driver --version 2.1.0 --locked
fi

if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "setup: installing the UI's npm packages"
  (cd ui && npm ci --no-audit --no-fund)
fi
