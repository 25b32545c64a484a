#!/bin/bash
# remount.sh [VAR=val ...]: remounts the perf vault volume with the given server tuning env.
export VAULT_RUN_DIR=/run/vault-perf
# PERF_DIR (default /tmp/perf): a.vol, a throw-away bench volume made with passphrase perfpass123.
PERF=${PERF_DIR:-/tmp/perf}
V="node $(dirname "$0")/../../dist/src/cli/main.js"
if mountpoint -q $PERF/mnt; then $V dismount $PERF/mnt >/dev/null || exit 1; fi
echo -n 'perfpass123' | env "$@" $V mount $PERF/a.vol $PERF/mnt --password-stdin >/dev/null || exit 1
