#!/bin/bash
# seqwrite-backing.sh [rounds] : the bench's sequential write (fio 256 MiB, bs 1M, psync, end_fsync,
# caches dropped) into a freshly made 1 GiB volume each time, by how its backing file is allocated:
#   loopsparse / loopfilled  plain: a loop device (direct I/O, 4096-byte sectors) over a sparse or a
#                            filled image, ext4 made and mounted as the bench's plain setup does;
#   quick / filled           vault: `vault create --quick` or the default full fill.
# MODES picks some (default all four); MiB/s and the backing file's allocation. Root; uses
# WORK (default /var/tmp/vault-seqwrite) and this checkout's dist/. bench/RESULTS.md, 2026-12-07.
set -euo pipefail
ROUNDS=${1:-3}
WORK=${WORK:-/var/tmp/vault-seqwrite}
V=(node "$(dirname "$(readlink -f "$0")")/../../dist/src/cli/main.js")
KDF=(--kdf-memory 8 --kdf-iterations 1 --kdf-parallelism 1)
PW="seqwrite bench passphrase 7f3a"
mkdir -p "$WORK/m"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
fiow() {
  fio --name=sw --filename="$1/f" --rw=write --bs=1M --size=256M --ioengine=psync --end_fsync=1 --output-format=json |
    python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["jobs"][0]["write"]["bw"] / 1024))'
}
one() {
  local mode=$1 c="$WORK/c.vol" img="$WORK/p.img" dev mibps
  rm -f "$c" "$img"
  case $mode in
    loopsparse | loopfilled)
      if [ "$mode" = loopsparse ]; then truncate -s 1G "$img"; else dd if=/dev/urandom of="$img" bs=1M count=1024 status=none conv=fsync; fi
      dev=$(losetup -f --show --direct-io=on -b 4096 "$img")
      mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 "$dev"
      mount -o nosuid,nodev,noinit_itable "$dev" "$WORK/m"
      drop; mibps=$(fiow "$WORK/m")
      echo "$mode $mibps MiB/s, image $(du -m "$img" | cut -f1) MiB allocated"
      umount "$WORK/m"; losetup -d "$dev"; rm -f "$img"; return ;;
    quick) echo "$PW" | "${V[@]}" create "$c" --size 1G --fs ext4 --quick --password-stdin "${KDF[@]}" >/dev/null 2>&1 ;;
    filled) echo "$PW" | "${V[@]}" create "$c" --size 1G --fs ext4 --password-stdin "${KDF[@]}" >/dev/null 2>&1 ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  echo "$PW" | "${V[@]}" mount "$c" "$WORK/m" --fs-options noinit_itable --password-stdin >/dev/null
  drop; mibps=$(fiow "$WORK/m")
  echo "$mode $mibps MiB/s, container $(du -m "$c" | cut -f1) MiB allocated"
  "${V[@]}" dismount "$WORK/m" >/dev/null
  rm -f "$c"
}
for ((r = 1; r <= ROUNDS; r++)); do for m in ${MODES:-loopsparse loopfilled quick filled}; do one "$m"; done; done
