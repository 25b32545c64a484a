#!/bin/bash
# remount.sh [VAR=val ...]: remounts the perf vault volume with the given server tuning env.
export VAULT_RUN_DIR=/run/vault-perf
V="node /work/wt-perf/dist/src/cli/main.js"
if mountpoint -q /tmp/perf/mnt; then $V dismount /tmp/perf/mnt >/dev/null || exit 1; fi
echo -n 'perfpass123' | env "$@" $V mount /tmp/perf/a.vol /tmp/perf/mnt --password-stdin >/dev/null || exit 1
