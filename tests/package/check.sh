#!/usr/bin/env bash
# Checks a preforkctl Debian package (cpack -G DEB): what it holds, extracted into an empty directory, its
# dependencies (from dpkg-shlibdeps), and then installed with dpkg -i on this machine: the binary runs, man finds
# both pages, the completions and the systemd unit are where the shells and systemd look, and the installed
# preforkctl finds its preload library. Removes the package again at the end.
# usage: tests/package/check.sh PACKAGE.deb   (as root; CI runs it)
set -euo pipefail
deb=$(realpath "${1:?usage: tests/package/check.sh PACKAGE.deb}")
bash "$(dirname "$0")/../../contrib/install-deps.sh" man-db
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "package check: $*" >&2; exit 1; }

dpkg-deb -x "$deb" "$root"
echo "package check: $(basename "$deb") holds:" >&2
(cd "$root" && find . -type f | sort) >&2
libdir=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for file in usr/bin/preforkctl "usr/lib/$libdir/preforkctl/libpreforkctl-preload.so" \
            usr/share/man/man1/preforkctl.1.gz usr/share/man/man5/preforkctl.toml.5.gz \
            usr/share/bash-completion/completions/preforkctl usr/share/zsh/site-functions/_preforkctl \
            usr/share/fish/vendor_completions.d/preforkctl.fish usr/lib/systemd/system/preforkctl@.service; do
    [ -e "$root/$file" ] || fail "missing /$file"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "package check: Depends: $depends" >&2
for library in libc6 libstdc++6 libspdlog; do
    [[ $depends == *"$library"* ]] || fail "Depends lacks $library (dpkg-shlibdeps did not run?)"
done

dpkg -i "$deb" >/dev/null
trap 'dpkg -r preforkctl >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
[ "$(command -v preforkctl)" = /usr/bin/preforkctl ] || fail "preforkctl is not /usr/bin/preforkctl"
preforkctl -V | grep -qx "preforkctl $(dpkg-deb -f "$deb" Version)" || fail "preforkctl -V: $(preforkctl -V)"
gzip -t "$root/usr/share/man/man1/preforkctl.1.gz" || fail "preforkctl.1.gz is no gzip file"
man -w preforkctl >/dev/null || fail "man -w preforkctl finds nothing"
man preforkctl 2>/dev/null | grep -q -- "--stop-timeout" || fail "man preforkctl does not show the page"
man -w 5 preforkctl.toml >/dev/null || fail "man -w 5 preforkctl.toml finds nothing"
[ -f /usr/share/bash-completion/completions/preforkctl ] || fail "no bash completion"
bash --norc -c 'source /usr/share/bash-completion/completions/preforkctl; COMP_WORDS=(preforkctl --sock);
    COMP_CWORD=1; _preforkctl; [ "${COMPREPLY[*]}" = --socket-mode ]' || fail "the installed bash completion does not complete --sock"
preforkctl -n 1 --preload -l 127.0.0.1:0 --print-plan -- /bin/true | grep -q "/usr/lib/$libdir/preforkctl/libpreforkctl-preload.so" ||
    fail "the installed preforkctl does not find its preload library"
echo "package check: $(basename "$deb") installs and works" >&2
