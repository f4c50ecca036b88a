#!/usr/bin/env bash
# scripts/get-cifar10.sh: puts CIFAR-10 (binary version) at data/cifar-10-batches-bin.
#   1. already there and complete: nothing to do;
#   2. ../shared/cifar10/cifar-10-batches-bin exists (this project's machines): link to it;
#   3. otherwise download the official tarball, check its MD5, unpack.
# Every file is checked against the official per-file MD5 sums.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/cifar-10-batches-bin
url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
tar_md5=c32a1d4ab5d03f1284b67883e8d87530
declare -A md5=(
  [data_batch_1.bin]=5dd7e06a14cb22eb9f671a540d1b7c25 [data_batch_2.bin]=5ea93a67294ea407fff1d09f752e9692
  [data_batch_3.bin]=942cd6a4bcdd0dd3c604fbe906cb4421 [data_batch_4.bin]=ae636b3ba5c66a11e91e8cb52e771fcb
  [data_batch_5.bin]=53f37980c15c3d472c316c40844f3f0d [test_batch.bin]=803d5f7f4d78ea53de84dbe85f74fb6d)

check() {  # <dir>: all six files with the official sums
  for f in "${!md5[@]}"; do
    [[ -f "$1/$f" ]] || return 1
    [[ "$(md5sum "$1/$f" | cut -d' ' -f1)" == "${md5[$f]}" ]] || { echo "get-cifar10: $1/$f has the wrong MD5" >&2; return 1; }
  done
}

if check "$dest" 2>/dev/null; then echo "get-cifar10: $dest is complete"; exit 0; fi
mkdir -p data
shared=../shared/cifar10/cifar-10-batches-bin
if check "$shared" 2>/dev/null; then
  rm -rf "$dest"
  ln -s "$(cd "$shared" && pwd)" "$dest"
  echo "get-cifar10: linked $dest -> $shared"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "get-cifar10: downloading $url"
if ! { command -v curl >/dev/null && curl -fL --retry 2 -o "$tmp/c.tgz" "$url"; } &&
   ! { command -v wget >/dev/null && wget -q -O "$tmp/c.tgz" "$url"; }; then
  cat >&2 <<MSG
get-cifar10: could not download $url (no network?).
Put the six files of the CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin) in
  $(pwd)/$dest
or pass --data DIR (or --set data.dir=DIR) to scconv train.
MSG
  exit 1
fi
[[ "$(md5sum "$tmp/c.tgz" | cut -d' ' -f1)" == "$tar_md5" ]] || { echo "get-cifar10: the download has the wrong MD5" >&2; exit 1; }
tar -xzf "$tmp/c.tgz" -C "$tmp"
rm -rf "$dest"
mv "$tmp/cifar-10-batches-bin" "$dest"
check "$dest"
echo "get-cifar10: $dest ready"
