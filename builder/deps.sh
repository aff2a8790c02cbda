#!/usr/bin/env bash
# make deps: install what the build host needs. Idempotent and quiet when everything is there.
set -euo pipefail
PACKAGES=(
  qemu-system-x86 qemu-utils ovmf            # keel qemu and the boot tests
  grub-common grub-pc-bin grub-efi-amd64-bin  # grub-mkimage, BIOS and UEFI modules
  squashfs-tools dosfstools mtools            # USR squashfs, ESP vfat (rootless)
  fdisk gdisk e2fsprogs kmod cpio             # checks of the GPT, OEM/ROOT ext4, depmod, cpio in tests
  cryptsetup-bin xz-utils util-linux dpkg apt tar binutils
  genisoimage openssh-client python3   # config-drive ISOs, ssh and notify in tests
  busybox-static                       # a static binary the ELF tests read
  etcd-server etcd-client              # the locksmith etcd-lock tests (etcd 3.4, v2 API)
  gcc libc6-dev                        # the initramfs's static dm-verity opener
  docker-registry skopeo umoci openssl # container images: a real registry, OCI tooling, token-auth certs
  attr                                 # getfattr: tests check opaque dirs of unpacked layers
  zstd                                 # zstd-compressed layers for the containers QEMU test
  crun runc                            # make bench: container start against the OCI runtimes
  nftables iproute2                    # container networking tests (NAT, ports) on the host
)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
if ((${#missing[@]})); then
  echo "make deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keel build fetches pinned packages with apt-get download, which needs current package lists.
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then $SUDO apt-get update -qq; fi
# npm ci when the lock or the manifest changed since the last install (it also builds the native
# helper and compiles the TypeScript); otherwise rebuild just the helper when its sources changed.
stamp=node_modules/.keel-deps
if [[ ! -f $stamp || package-lock.json -nt $stamp || package.json -nt $stamp ]]; then
  echo "make deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
addon=build/Release/keel_native.node
if [[ ! -f $addon || binding.gyp -nt $addon ]] || [[ -n $(find native/src -newer "$addon" -name '*.[ch]' -print -quit) ]]; then
  echo "make deps: building the native helper"
  npm run --silent install >/dev/null
fi
