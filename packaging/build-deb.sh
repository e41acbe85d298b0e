#!/usr/bin/env bash
# Build the wheel and a Debian package of it with dpkg-deb.
#
#   packaging/build-deb.sh [OUTDIR]      (default OUTDIR: dist/)
#
# The package installs unitmgr into /usr/lib/python3/dist-packages and takes
# its libraries from Debian's own python3-* packages (Debian 12 or newer:
# Python 3.11). Man pages and shell completions are generated from the
# command and directive declarations when packaging/generate.py is present.
set -euo pipefail
cd "$(dirname "$0")/.."
outdir=$(realpath -m "${1:-dist}")
python=${PYTHON:-python3}
mkdir -p "$outdir"

version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
if ! "$python" -c 'import wheel' 2>/dev/null; then
  echo "build-deb.sh: $python lacks the 'wheel' package; install it: $python -m pip install wheel" >&2
  exit 1
fi
"$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$outdir" .
# With a C compiler the wheel carries manager/_clone3.c built for this machine
# (cp311-abi3-linux_ARCH), so the package is for this architecture. Without one
# the wheel is pure Python (py3-none-any) and the package is for every architecture.
wheel=$(ls -t "$outdir"/unitmgr-"$version"-*.whl | head -n 1)
case "$wheel" in
  *-none-any.whl) architecture=all ;;
  *) architecture=$(dpkg --print-architecture) ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# mktemp makes the directory 0700, and dpkg-deb would give the package root that mode.
chmod 755 "$stage"
"$python" -m pip install --quiet --no-deps --no-compile --target "$stage/usr/lib/python3/dist-packages" "$wheel"
rm -rf "$stage/usr/lib/python3/dist-packages/bin"
# pip records where the wheel came from; a package must not carry the build path.
rm -f "$stage"/usr/lib/python3/dist-packages/unitmgr-*.dist-info/direct_url.json

install -d "$stage/usr/bin"
for script in unitmgr:manager unitsh:shell; do
  name=${script%%:*}
  package=${script##*:}
  printf '#!/usr/bin/python3\nimport sys\nfrom unitmgr.%s.cli import main\nsys.exit(main())\n' "$package" \
    > "$stage/usr/bin/$name"
  chmod 755 "$stage/usr/bin/$name"
done

install -d "$stage/usr/share/doc/unitmgr" "$stage/etc/xdg/autostart" "$stage/usr/lib/systemd/user"
install -m 644 README.md "$stage/usr/share/doc/unitmgr/README.md"
install -m 644 packaging/autostart/unitmgr.desktop "$stage/etc/xdg/autostart/unitmgr.desktop"
sed 's|^ExecStart=%h/.local/bin/unitmgr|ExecStart=/usr/bin/unitmgr|' packaging/systemd/unitmgr.service \
  > "$stage/usr/lib/systemd/user/unitmgr.service"
chmod 644 "$stage/usr/lib/systemd/user/unitmgr.service"
install -d "$stage/usr/share/unitmgr/profile"
install -m 644 packaging/profile/unitmgr.sh packaging/profile/unitmgr.fish "$stage/usr/share/unitmgr/profile/"

if [ -f packaging/generate.py ]; then
  PYTHONPATH="$stage/usr/lib/python3/dist-packages" "$python" packaging/generate.py --root "$stage"
fi

install -d "$stage/DEBIAN"
installed_size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: unitmgr
Version: $version
Architecture: $architecture
Maintainer: unitmgr developers <unitmgr@localhost>
Installed-Size: $installed_size
Depends: python3 (>= 3.11), python3-zmq, python3-psutil, python3-prompt-toolkit, python3-paramiko, python3-cryptography
Section: admin
Priority: optional
Description: per-user service manager for systemd unit files
 unitmgr runs systemd-style unit files under a user's own account without
 root or systemd --user, with an encrypted control endpoint and unitsh, a
 shell that speaks systemctl's verbs locally and over SSH.
CONTROL

deb="$outdir/unitmgr_${version}_${architecture}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
