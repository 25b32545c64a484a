#!/usr/bin/env bash
# README's first Quick start command: sets up a fresh Debian machine, installs the vault command
# (into /usr/local: bin/vault, the man page, bash completion), then shows the main job: create a
# volume, mount it, write a file, list, dismount. Run as root (an ordinary user: through sudo).
#
# Run through sudo by an ordinary user, it shows that user's path (issue 15): `vault setup-rootless
# --user $SUDO_USER` prepares the machine (saying each change), then every vault command runs as
# that user, without root. Run by root itself (no SUDO_USER), it shows root's path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
[[ -d node_modules && -f native/build/Release/vault_native.node ]] || npm ci --no-fund --no-audit
# A copy, not a link to this clone (--install-links): root's vault must not run code from a
# directory its user can change. npm's allowScripts warnings are noise here (the package is built
# before it is installed), hence --loglevel=error.
echo "== npm install -g --install-links --prefix /usr/local .   (vault on PATH, man vault, bash completion)"
npm install -g --install-links --prefix /usr/local . --no-fund --no-audit --loglevel=error
install -d /usr/local/share/bash-completion/completions
/usr/local/bin/vault completion bash >/usr/local/share/bash-completion/completions/vault
cli=/usr/local/bin/vault
user=${SUDO_USER:-root}
if [[ $user != root ]]; then
  uid=$(id -u "$user")
  echo "== sudo vault setup-rootless --user $user   (once per machine)"
  "$cli" setup-rootless --user "$user"
  # A login gives the user their runtime directory; under sudo it may not exist yet.
  if [[ ! -d /run/user/$uid ]]; then install -d -m 0700 -o "$uid" -g "$(id -g "$user")" "/run/user/$uid"; fi
  # The user's own environment, with the group vault just added (--init-groups reads it now).
  vault() {
    setpriv --reuid "$uid" --regid "$(id -g "$user")" --init-groups --reset-env -- \
      env HOME="$(getent passwd "$user" | cut -d: -f6)" USER="$user" XDG_RUNTIME_DIR="/run/user/$uid" \
      ${DBUS_SYSTEM_BUS_ADDRESS:+DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS} \
      PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$cli" "$@"
  }
  as_user() { setpriv --reuid "$uid" --regid "$(id -g "$user")" --init-groups -- "$@"; }
  echo "== from here on, every vault command runs as $user, without root"
else
  vault() { "$cli" "$@"; }
  as_user() { "$@"; }
fi

work=$(mktemp -d /tmp/vault-demo-XXXXXX)
[[ $user == root ]] || chown "$user:" "$work"
# Only what the demo made: other volumes on this machine are none of its business.
trap 'vault dismount "$work/secret.vol" --force --quiet 2>/dev/null || true; rm -rf "$work"' EXIT
# A demo passphrase on stdin keeps the demo non-interactive; a person would type it at the prompt.
pass='demo passphrase, use a better one'

echo "== vault create $work/secret.vol --size 256M --fs ext4"
echo "$pass" | vault create "$work/secret.vol" --size 256M --fs ext4 --password-stdin
echo "== vault mount $work/secret.vol"
echo "$pass" | vault mount "$work/secret.vol" --password-stdin
# Where vault mounted it: /media/<user>/<uuid> through udisks, ~/Vaults/secret through fuse2fs,
# /media/vault/root/secret as root.
mountpoint_of() {
  vault list --json | node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")).find((x) => x.container === process.argv[1]); process.stdout.write(v ? v.mountpoint : "")' "$1"
}
mp=$(mountpoint_of "$work/secret.vol")
echo "== write a file"
echo "hello from inside the encrypted volume" | as_user tee "$mp/hello.txt" >/dev/null
as_user ls -l "$mp"
echo "== vault list"
vault list
echo "== vault dismount $mp"
vault dismount "$mp"
echo "== the container holds no plaintext:"
if grep -q "hello from inside" "$work/secret.vol"; then echo "plaintext found (this is a bug)"; exit 1; else echo "  'hello from inside' does not occur in secret.vol"; fi
echo "== mount again and read it back"
echo "$pass" | vault mount "$work/secret.vol" --password-stdin --read-only
mp=$(mountpoint_of "$work/secret.vol")
as_user cat "$mp/hello.txt"
vault dismount "$mp"
echo "== vault stays installed: vault --help, man vault"
echo "== done"
