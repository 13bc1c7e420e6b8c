#!/usr/bin/env bash
# Builds the release app and its packages in target/release/bundle/:
# deb/DAN_<version>_amd64.deb (Tauri's bundler; with the headless `dan` and
# the release manifest /usr/share/dan/dan-release.json) and
# appimage/DAN_<version>_amd64.AppImage (built here: Tauri's AppImage bundler
# needs linuxdeploy from GitHub). Then starts the AppImage under Xvfb to
# check that it really runs the app.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh squashfs-tools squashfuse fuse3
(cd ui && npm run build)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
cargo build --release --locked -p dan-cli -p appimage-runtime
./ui/node_modules/.bin/tauri build --bundles deb
deb=target/release/bundle/deb/DAN_${version}_amd64.deb

# The release manifest names the executables as shipped: the bundler may
# patch the desktop binary, so hash the copy inside the .deb. Then bundle
# again with the manifest and the headless `dan` inside, and check that the
# shipped desktop binary is still the one the manifest names.
shipped=$(mktemp -d)
trap 'rm -rf "$shipped"' EXIT
dpkg-deb -x "$deb" "$shipped"
manifest=target/release/dan-release.json
target/release/dan --json release-manifest --version "$version" \
  --desktop "$shipped/usr/bin/dan-desktop" --headless target/release/dan --out "$manifest" >/dev/null
files=$(printf '{"bundle":{"linux":{"deb":{"files":{"/usr/share/dan/dan-release.json":"%s","/usr/bin/dan":"%s"}}}}}' \
  "$PWD/$manifest" "$PWD/target/release/dan")
./ui/node_modules/.bin/tauri bundle --bundles deb --config "$files"
rm -rf "$shipped" && mkdir -p "$shipped"
dpkg-deb -x "$deb" "$shipped"
desktop_hash=$(target/release/dan code-hash "$shipped/usr/bin/dan-desktop")
if ! grep -q "$desktop_hash" "$shipped/usr/share/dan/dan-release.json"; then
  echo "package: the .deb's dan-desktop ($desktop_hash) is not the build its manifest names" >&2
  exit 1
fi

out=target/release/bundle/appimage
appdir=$out/DAN.AppDir
image=$out/DAN_${version}_amd64.AppImage

rm -rf "$appdir" "$image"
mkdir -p "$appdir/usr/bin" "$appdir/usr/share/applications" \
  "$appdir/usr/share/icons/hicolor/512x512/apps"
# The same executables and manifest as the .deb, side by side.
cp "$shipped/usr/bin/dan-desktop" "$shipped/usr/bin/dan" "$shipped/usr/share/dan/dan-release.json" "$appdir/usr/bin/"
cp icons/icon.png "$appdir/usr/share/icons/hicolor/512x512/apps/dan-desktop.png"
cp icons/icon.png "$appdir/dan-desktop.png"
ln -s dan-desktop.png "$appdir/.DirIcon"
sed -e 's/{{categories}}/Utility;/' \
  -e 's/{{comment}}/Run one instance of a Distributed Administration Network/' \
  -e 's/{{exec}}/dan-desktop/g' -e 's/{{icon}}/dan-desktop/' -e 's/{{name}}/DAN/' \
  src-tauri/dan-desktop.desktop >"$appdir/dan-desktop.desktop"
cp "$appdir/dan-desktop.desktop" "$appdir/usr/share/applications/"
cat >"$appdir/AppRun" <<'APPRUN'
#!/bin/sh
here="$(dirname "$(readlink -f "$0")")"
exec "$here/usr/bin/dan-desktop" "$@"
APPRUN
chmod +x "$appdir/AppRun"

cp target/release/appimage-runtime "$image"
# The AppImage type 2 magic in the ELF padding: "AI" 0x02 at offset 8.
printf 'AI\002' | dd of="$image" bs=1 seek=8 conv=notrunc status=none
runtime_size=$(stat -c %s "$image")
offset=$("$image" --appimage-offset)
if [ "$offset" != "$runtime_size" ]; then
  echo "package: the runtime computes payload offset $offset, but it is $runtime_size bytes long" >&2
  exit 1
fi
mksquashfs "$appdir" "$out/payload.squashfs" -root-owned -noappend -no-progress >/dev/null
cat "$out/payload.squashfs" >>"$image"
rm "$out/payload.squashfs"
chmod +x "$image"

# Smoke test: the AppImage starts the app (which opens its hand-over
# socket), and a second start hands over to it and exits.
check=$(mktemp -d)
trap 'pkill -TERM -f "dan-desktop --data-dir $check/data" || true; rm -rf "$check" "$shipped"' EXIT
xvfb-run -a "$image" --data-dir "$check/data" >"$check/app.log" 2>&1 &
app=$!
for _ in $(seq 1 120); do
  [ -S "$check/data/app.sock" ] && break
  sleep 0.5
done
if [ ! -S "$check/data/app.sock" ]; then
  echo "package: the AppImage did not start the app:" >&2
  cat "$check/app.log" >&2
  exit 1
fi
timeout 20 "$image" --data-dir "$check/data"
pkill -TERM -f "dan-desktop --data-dir $check/data"
wait "$app" || true
echo "package: built $(ls target/release/bundle/deb/*.deb) and $image ($(du -h "$image" | cut -f1)); the AppImage starts the app"
