#!/usr/bin/env bash
# Makes the pre-built man pages of man/prebuilt/ again from their AsciiDoc sources (what an install without
# asciidoctor gets). Run it after editing a page; Cli.PrebuiltManPagesAreTheBuiltOnes says when it is due.
# usage: man/update-prebuilt.sh
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^project(preforkctl VERSION \([0-9.]*\).*/\1/p' ../CMakeLists.txt)
mkdir -p prebuilt
for page in preforkctl.1 preforkctl.toml.5; do
    asciidoctor -b manpage -a release-version="$version" -o "prebuilt/$page" "$page.adoc"
done
