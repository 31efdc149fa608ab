#!/usr/bin/env bash
# Install the system packages the build and tests need, and say what was found and what is
# installed. llama.cpp is built from source by the llama-cpp-2 crate: it needs cmake, a C++
# compiler and libclang (bindgen). Plots need a TrueType font; `--test` adds Chromium, which a
# test uses to open the HTML report, and Python 3 with venv, for the grader's Python package.
#
#   scripts/install-deps.sh [--test] [--dry-run]
#
# --dry-run prints the findings and what would be installed, installs nothing, and exits 0.
#
# Each package counts as present when the package manager says it is installed, or when the file
# the build actually loads is there. For libclang that file is what bindgen (clang-sys) opens:
# `libclang.so`, `libclang-N.so` or a versioned `libclang.so.N` / `libclang-N.so.M`; `libclang-cpp`
# (the C++ interface library, which many machines carry without libclang-dev) does not count.
#
# Environment, for tests: INSTALL_DEPS_LIB_DIRS (colon-separated directories searched for
# libclang instead of the system ones) and INSTALL_DEPS_NO_DPKG=1 (do not ask dpkg-query).
set -euo pipefail

test_deps=0
dry_run=0
for arg in "$@"; do
  case $arg in
    --test) test_deps=1 ;;
    --dry-run) dry_run=1 ;;
    *) echo "install-deps: unknown option $arg (use --test, --dry-run)" >&2; exit 2 ;;
  esac
done

say() { echo "install-deps: $*" >&2; }

# Whether dpkg knows the package as installed.
dpkg_has() {
  [ "${INSTALL_DEPS_NO_DPKG:-0}" = 1 ] && return 1
  command -v dpkg-query >/dev/null || return 1
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Prints the first libclang that bindgen would load, searching LIBCLANG_PATH and the usual
# library directories (or INSTALL_DEPS_LIB_DIRS).
find_libclang() {
  local dirs
  if [ -n "${INSTALL_DEPS_LIB_DIRS:-}" ]; then
    dirs=${INSTALL_DEPS_LIB_DIRS//:/ }
  else
    dirs="${LIBCLANG_PATH:-} $(echo /usr/lib/llvm-*/lib) /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib"
  fi
  local dir file
  for dir in $dirs; do
    [ -d "$dir" ] || continue
    for file in "$dir"/libclang*.so*; do
      [ -e "$file" ] || continue
      if [[ $(basename "$file") =~ ^libclang(-[0-9]+(\.[0-9]+)*)?\.so(\.[0-9]+)*$ ]]; then
        echo "$file"
        return 0
      fi
    done
  done
  return 1
}

missing=()
# need PACKAGE DESCRIPTION FOUND-OR-EMPTY
need() {
  if [ -n "$3" ]; then
    say "found $2: $3"
  elif dpkg_has "$1"; then
    say "found $2: package $1 is installed"
  else
    say "missing $2: will install $1"
    missing+=("$1")
  fi
}

command -v cargo >/dev/null || { say "error: cargo is required (install Rust with rustup)"; exit 1; }
# Cargo.toml's rust-version: std's file locks (run directories) arrived in 1.89.
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
[ "${rust_minor:-0}" -ge 89 ] 2>/dev/null ||
  { say "error: Rust 1.89 or newer is required, found $(rustc --version) (rustup update)"; exit 1; }
need cmake "cmake" "$(command -v cmake || true)"
need g++ "a C++ compiler" "$(command -v c++ || true)"
need libclang-dev "libclang for bindgen" "$(find_libclang || true)"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
need fonts-dejavu-core "the DejaVu font for plots" "$([ -f $font ] && echo $font || true)"
if [ $test_deps = 1 ]; then
  need chromium "Chromium for the report test" "$(command -v chromium || command -v chromium-browser || true)"
  # The grader's Python package is built and tested in a virtual environment.
  need python3 "Python 3 for the grader's Python package" "$(command -v python3 || true)"
  need python3-venv "Python's venv with pip (ensurepip)" "$(python3 -c 'import ensurepip, venv; print("python3 -m venv")' 2>/dev/null || true)"
fi

if [ ${#missing[@]} -eq 0 ]; then
  say "nothing to install"
  exit 0
fi
if [ $dry_run = 1 ]; then
  say "would install: ${missing[*]}"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  say "error: no apt-get here; install ${missing[*]} (or your system's equivalents) with your package manager"
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
say "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
say "installed: ${missing[*]}"
