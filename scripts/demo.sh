#!/usr/bin/env bash
# README's first Quick start command: sets up a fresh Debian machine, then shows the main job:
# create a volume, mount it, write a file, list, dismount. Run as root (sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
[[ -d node_modules && -f native/build/Release/vault_native.node ]] || npm ci --no-fund --no-audit
npm run --silent build
vault() { node dist/src/cli/main.js "$@"; }

work=$(mktemp -d /tmp/vault-demo-XXXXXX)
# Only what the demo made: other volumes on this machine are none of its business.
trap 'vault dismount "$work/secret.vol" --force --quiet 2>/dev/null || true; rm -rf "$work"' EXIT
# A demo passphrase on stdin keeps the demo non-interactive; a person would type it at the prompt.
pass='demo passphrase, use a better one'

echo "== vault create $work/secret.vol --size 256M --fs ext4"
echo "$pass" | vault create "$work/secret.vol" --size 256M --fs ext4 --password-stdin
echo "== vault mount $work/secret.vol"
echo "$pass" | vault mount "$work/secret.vol" --password-stdin
# Where vault mounted it (by default /media/vault/<user>/secret, <user> being who ran sudo, or root).
mountpoint_of() {
  vault list --json | node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")).find((x) => x.container === process.argv[1]); process.stdout.write(v ? v.mountpoint : "")' "$1"
}
mp=$(mountpoint_of "$work/secret.vol")
echo "== write a file"
echo "hello from inside the encrypted volume" > "$mp/hello.txt"
ls -l "$mp"
echo "== vault list"
vault list
echo "== vault dismount $mp"
vault dismount "$mp"
echo "== the container holds no plaintext:"
if grep -q "hello from inside" "$work/secret.vol"; then echo "plaintext found (this is a bug)"; exit 1; else echo "  'hello from inside' does not occur in secret.vol"; fi
echo "== mount again and read it back"
echo "$pass" | vault mount "$work/secret.vol" --password-stdin --read-only
mp=$(mountpoint_of "$work/secret.vol")
cat "$mp/hello.txt"
vault dismount "$mp"
echo "== done"
