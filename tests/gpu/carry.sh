#!/bin/bash
# Fills .carry/ (git-ignored) with what tests/gpu/run.sh needs on a GPU machine that has no Debian
# packages and no internet: the amd64 Debian 12 packages of the headless build's dependencies, unpacked
# under .carry/root, plus a copy of the shared test data under .carry/testdata. Run it here (with
# internet), then hand `.carry` to the device tool's `carry`.
#
# Non-obvious choice: the list names every runtime library the -dev packages' .so links point at
# (libgfortran5 and libquadmath0 for OpenBLAS too) and pkgconf itself, because the GPU machine may have
# none of them; then everything the build never reads (docs, man pages, sources, unused static
# libraries, the debs themselves) is deleted, because the device tool carries at most 64 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.carry
tools=${CARRY_DEBS:-$PWD/../shared/tools/carry-debs}
[ -x "$tools" ] || { echo "carry.sh: carry-debs not found at $tools (set CARRY_DEBS)" >&2; exit 1; }

# From CMakeLists.txt (pkg-config: sentencepiece, libpcre2-8; nlohmann_json, SQLite3, CLI11),
# trainer/CMakeLists.txt (yaml-cpp, OpenBLAS + cblas.h, sentencepiece_train; OpenMP comes with the
# compiler), tests/CMakeLists.txt (GTest; gmock beside it). app/ needs nothing more.
PACKAGES=(
  libsentencepiece0 libsentencepiece-dev
  libpcre2-8-0 libpcre2-dev
  libsqlite3-0 libsqlite3-dev
  libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0
  libyaml-cpp0.7 libyaml-cpp-dev
  nlohmann-json3-dev
  libcli11-dev
  googletest libgtest-dev libgmock-dev
  pkgconf-bin libpkgconf3
)

rm -rf "$dir/root" "$dir/debs"
"$tools" "$dir" "${PACKAGES[@]}"

root=$dir/root/usr
lib=$root/lib/x86_64-linux-gnu
# Trim: nothing below is read by the build or at run time.
rm -rf "$dir/debs" "$root/share/doc" "$root/share/man" "$root/share/info" "$root/share/lintian" \
       "$root/src" "$root/share/bug" "$root/share/gdb" "$root/share/aclocal" "$root/share/pkgconfig/"*.pc.dpkg* 2>/dev/null || true
# Static libraries: only GoogleTest ships nothing else (libgtest.a, libgmock.a ...); the rest link shared.
find "$dir/root" -name '*.a' ! -name 'libgtest*.a' ! -name 'libgmock*.a' -delete
# pcre2: only the 8-bit library is used; its -dev links to the 16/32-bit and posix ones would dangle.
rm -f "$lib"/libpcre2-16.so "$lib"/libpcre2-32.so "$lib"/libpcre2-posix.so
# OpenBLAS: Debian points /usr/lib/x86_64-linux-gnu/libopenblas.so* at openblas-pthread/ through
# update-alternatives in its postinst, which dpkg -x never runs; make those links (relative) here.
# LAPACK (7 MB) and the reference-BLAS links are never used.
rm -f "$lib"/openblas-pthread/liblapack.so* "$lib"/openblas-pthread/libblas.so*
for f in libopenblas.so libopenblas.so.0; do ln -sfn "openblas-pthread/$f" "$lib/$f"; done
ln -sfn openblas-pthread/cblas.h "$root/include/x86_64-linux-gnu/cblas.h" 2>/dev/null || true

# The small part of the shared test data that GPU checks use (../shared does not travel with the
# checkout; its 19 MB of tokenizer vocabularies would not fit beside OpenBLAS).
rm -rf "$dir/testdata"
src=${HEARTH_SHARED_TESTDATA:-$PWD/../shared/testdata}
mkdir -p "$dir/testdata"
for d in README.md models chat-templates; do
  if [ -e "$src/$d" ]; then cp -r "$src/$d" "$dir/testdata/"; else echo "carry.sh: no $src/$d" >&2; fi
done

# What the build looks for (fails loudly here, not on the GPU machine).
missing=0
for f in "$lib/pkgconfig/sentencepiece.pc" "$lib/pkgconfig/libpcre2-8.pc" "$lib/libsentencepiece_train.so" \
         "$lib/libopenblas.so" "$root/include/x86_64-linux-gnu/openblas-pthread/cblas.h" \
         "$root/include/sqlite3.h" "$lib/libsqlite3.so" "$root/include/pcre2.h" \
         "$root/include/sentencepiece_processor.h" "$root/include/yaml-cpp/yaml.h" \
         "$root/include/nlohmann/json.hpp" "$root/include/CLI/CLI.hpp" "$root/include/gtest/gtest.h" \
         "$lib/libgtest.a" "$lib/libgmock.a" "$lib/libgfortran.so.5" "$root/bin/pkgconf"; do
  [ -e "$f" ] || { echo "carry.sh: missing $f" >&2; missing=1; }
done
for c in nlohmann_json CLI11 GTest yaml-cpp; do
  compgen -G "$root/share/cmake/$c/*onfig.cmake" >/dev/null || compgen -G "$lib/cmake/$c/*onfig.cmake" >/dev/null \
    || { echo "carry.sh: no CMake package $c" >&2; missing=1; }
done
# Dangling links would fail at the far end; list them.
dangling=$(find "$dir/root" -xtype l)
[ -z "$dangling" ] || { echo "carry.sh: dangling links:" >&2; echo "$dangling" >&2; missing=1; }
echo "carry.sh: .carry is $(du -sh "$dir" | cut -f1) (root $(du -sh "$dir/root" | cut -f1))"
exit $missing
