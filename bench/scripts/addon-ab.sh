#!/bin/bash
# addon-ab.sh A.node B.node [rounds] : two builds of the native addon, alternated on fresh volumes.
# Each round and each addon: copy it over native/build/Release/vault_native.node (every mount starts
# a new server, which loads it), make a --quick 1 GiB ext4 volume, mount it, and run the bench's
# order with fio: the first sequential write (256 MiB, bs 1M, psync, end_fsync), a cold sequential
# read, an overwrite, 3 s of 4 KiB random writes at QD16 (O_DIRECT). Prints MiB/s and IOPS per run.
# LOOPQ=max_sectors_kb:read_ahead_kb sets the loop device's queue first (default: as the kernel
# gave it). Root; uses WORK (default /var/tmp/vault-addon-ab) and this checkout's dist/; puts the
# addon that was there back at the end. bench/RESULTS.md, 2026-12-07 evening.
set -euo pipefail
A=$(readlink -f "$1") B=$(readlink -f "$2") ROUNDS=${3:-3}
ROOT="$(dirname "$(readlink -f "$0")")/../.."
ADDON="$ROOT/native/build/Release/vault_native.node"
WORK=${WORK:-/var/tmp/vault-addon-ab}
V=(node "$ROOT/dist/src/cli/main.js")
KDF=(--kdf-memory 8 --kdf-iterations 1 --kdf-parallelism 1)
PW="addon ab passphrase 51c9"
mkdir -p "$WORK/m"
cp "$ADDON" "$WORK/kept.node"
trap 'cp "$WORK/kept.node" "$ADDON"; "${V[@]}" dismount "$WORK/m" >/dev/null 2>&1 || true; rm -f "$WORK/c.vol"' EXIT
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
fio1() { # name rw [extra...] -> MiB/s (sequential) or IOPS (random)
  local rw=$2
  shift 2
  fio --name=ab --filename="$WORK/m/f" --rw="$rw" --size=256M --output-format=json "$@" |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; d=j["read"] if j["read"]["io_bytes"] else j["write"]; print("%.0f" % (d["iops"] if "'"$rw"'".startswith("rand") else d["bw"] / 1024))'
}
for _ in $(seq "$ROUNDS"); do
  for which in A B; do
    if [ $which = A ]; then cp "$A" "$ADDON"; else cp "$B" "$ADDON"; fi
    rm -f "$WORK/c.vol"
    echo "$PW" | "${V[@]}" create "$WORK/c.vol" --size 1G --fs ext4 --quick --password-stdin "${KDF[@]}" >/dev/null 2>&1
    echo "$PW" | "${V[@]}" mount "$WORK/c.vol" "$WORK/m" --password-stdin --fs-options noinit_itable >/dev/null
    dev=$("${V[@]}" list --json | python3 -c 'import json,sys; print([r["loopDevice"] for r in json.load(sys.stdin) if r["mountpoint"] == sys.argv[1]][0])' "$WORK/m")
    if [ -n "${LOOPQ:-}" ]; then
      echo "${LOOPQ%:*}" > "/sys/block/${dev#/dev/}/queue/max_sectors_kb"
      echo "${LOOPQ#*:}" > "/sys/block/${dev#/dev/}/queue/read_ahead_kb"
    fi
    drop
    w=$(fio1 w write --bs=1M --ioengine=psync --end_fsync=1)
    drop
    r=$(fio1 r read --bs=1M --ioengine=psync)
    drop
    o=$(fio1 o write --bs=1M --ioengine=psync --end_fsync=1)
    rw=$(fio1 rw randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --runtime=3 --time_based)
    echo "$which first-write $w read $r overwrite $o randwrite-iops $rw"
    "${V[@]}" dismount "$WORK/m" >/dev/null
  done
done
