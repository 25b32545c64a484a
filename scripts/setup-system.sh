#!/usr/bin/env bash
# Installs the Debian packages vault needs, when they are missing.
#   scripts/setup-system.sh          the packages `vault` itself needs at run time
#   scripts/setup-system.sh --test   also what the test suite needs
#   scripts/setup-system.sh --bench  also what `npm run bench` needs
# As root it installs with apt-get; otherwise it prints the exact command to run and exits 6
# (the exit code vault uses for a missing system component).
set -euo pipefail

# make, gcc, g++ (node-gyp links with it), python3 (node-gyp runs on it) and liburing-dev (the FUSE over
# io_uring transport) and libgcrypt20-dev (Serpent, Twofish and Camellia, the block ciphers of TrueCrypt's legacy modes, PBKDF2 with
# Whirlpool and Streebog for VeraCrypt headers) and libtss2-dev (tpm2-tss: TPM2 keyslots, native/tpm2.c) and libfido2-dev (FIDO2 hmac-secret keyslots)
# and libblkid-dev (what filesystem a volume holds, native/fs_napi.c) and libargon2-dev (Argon2 for vault and LUKS keyslots, native/kdf.c):
# `npm ci` builds the native addon, which vault cannot run without.
build=(make gcc g++ python3 liburing-dev libgcrypt20-dev libtss2-dev libfido2-dev libblkid-dev libargon2-dev)
# libglib2.0-bin (gdbus) and systemd (systemd-inhibit): `vault watch` listens to D-Bus through them.
# liburing2, libgcrypt20, libblkid1, libargon2-1: the native addon links against them; libfido2-1, libtss2-esys-3.0.2-0,
# libtss2-mu0, libtss2-rc0, libtss2-tctildr0: it opens them at their first use (native/token_libs.c);
# libtss2-tcti-device0 (/dev/tpmrm0) and libtss2-tcti-swtpm0 (a software TPM): the TCTIs tpm2-tss loads at run time.
runtime=(liburing2 libgcrypt20 libfido2-1 libblkid1 libargon2-1 libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-rc0 libtss2-tctildr0 libtss2-tcti-device0 libtss2-tcti-swtpm0 fuse3 e2fsprogs dosfstools exfatprogs util-linux mount fusefat exfat-fuse libglib2.0-bin systemd)
# udisks2, polkitd, fuse2fs and udev (systemd-udevd): `vault setup-rootless` and its test run the real
# daemons of "vault without root" (bench/lib/rootless-stack.ts, which the tests share).
# man-db (it brings groff-base): the install test renders the installed man page with `man -l`.
# zsh and fish: the completion test checks `vault completion zsh|fish` with the real shells.
# tmux: test/system/tty.test.ts draws the prompts on a real terminal and reads the screen back.
# libargon2-1 (also a run-time package above): the spec reader (test/support/spec-reader) runs Argon2id through it.
# swtpm and tpm2-tools: the TPM2 tests run a real software TPM and extend its PCRs with tpm2_pcrextend.
# libfuse3-dev and pkg-config: test/e2e/io-faults.test.ts compiles test/support/faultfs (a fault-injecting
# FUSE passthrough under the container) with cc at test time.
test_extra=(libargon2-1 swtpm tpm2-tools tmux fio psmisc python3-cryptography python3-dbusmock dbus-daemon cryptsetup-bin gdb udisks2 polkitd fuse2fs udev man-db zsh fish libfuse3-dev pkg-config)
# The bench's rootless setups (vault-udisks, vault-fuse2fs) run the same daemons as the rootless tests.
bench_extra=(fio gocryptfs dbus-daemon udisks2 polkitd fuse2fs udev)

want=("${build[@]}" "${runtime[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_extra[@]}") ;;
    --bench) want+=("${bench_extra[@]}") ;;
    *) echo "usage: $0 [--test] [--bench]" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
# Deduplicate while keeping order.
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
fi

if ((${#missing[@]} == 0)); then
  echo "vault setup: all system packages present"
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "vault setup: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  sudo sh -c '$cmd'" >&2
  exit 6
fi
echo "vault setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The fuse kernel module is built in on the machines we target; load it where it is a module.
[[ -e /dev/fuse ]] || modprobe fuse 2>/dev/null || true
echo "vault setup: done"
