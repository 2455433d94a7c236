#!/usr/bin/env bash
# Builds qBittorrent 4.5.2's qbittorrent-nox (Debian 12's source package) with the megatorrent patch
# series from qbittorrent/ applied and -DMEGATORRENT=ON, into build/qbittorrent/.
# Idempotent: re-running it reuses the downloaded source, skips applied patches and rebuilds
# incrementally. Needs root for apt (deb-src, build dependencies) unless they are already present.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
qbt_version=4.5.2
src_root=build/qbittorrent/src
series=qbittorrent/series

# MEGATORRENT=OFF builds the same (patched) tree without the feature, into build/qbittorrent/plain,
# to compare sizes; the default is ON.
megatorrent=${MEGATORRENT:-ON}
build_dir=build/qbittorrent/build
[[ $megatorrent == ON ]] || build_dir=build/qbittorrent/plain

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=900 "$@"; }

# deb-src for the suites the machine's deb sources already use (deb822 or one-line format).
enable_deb_src() {
    local out=/etc/apt/sources.list.d/megatorrent-deb-src.sources
    [[ -f $out ]] && return 0
    local tmp
    tmp=$(mktemp)
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f && $f != "$out" ]] || continue
        # Keep the stanzas whose Types include deb; rewrite their Types line to deb-src.
        awk 'BEGIN { RS=""; ORS="\n\n" }
             /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|\n|$)/ {
                 n = split($0, lines, "\n"); s = ""
                 for (i = 1; i <= n; i++) {
                     if (lines[i] ~ /^Types:/) lines[i] = "Types: deb-src"
                     if (lines[i] ~ /^#/) continue
                     s = s lines[i] "\n"
                 }
                 printf "%s\n", s
             }' "$f" >>"$tmp"
    done
    if [[ -f /etc/apt/sources.list ]]; then
        grep -E '^deb[[:space:]]' /etc/apt/sources.list | sed -E 's/^deb([[:space:]])/deb-src\1/' \
            | awk '{ opts=""; i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                     printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", $i, $(i+1)
                     for (j = i + 2; j <= NF; j++) printf " %s", $j; printf "\n\n" }' >>"$tmp" || true
    fi
    if ! grep -q 'Types: deb-src' "$tmp"; then
        echo "qbittorrent.sh: found no deb sources to derive deb-src from" >&2
        rm -f "$tmp"
        exit 1
    fi
    install -m 0644 "$tmp" "$out"
    rm -f "$tmp"
    apt_get update -qq
}

build_deps=(qt6-base-dev qt6-tools-dev qt6-tools-dev-tools qt6-l10n-tools libtorrent-rasterbar-dev
    libboost-dev libssl-dev zlib1g-dev cmake ninja-build g++ dpkg-dev patch)
missing=()
for p in "${build_deps[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

src_dir=$(ls -d "$src_root"/qbittorrent-"$qbt_version" 2>/dev/null || true)
if ((${#missing[@]})) || [[ -z $src_dir ]]; then
    enable_deb_src
    if ((${#missing[@]})); then
        apt_get update -qq
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

if [[ -z $src_dir ]]; then
    mkdir -p "$src_root"
    # dpkg-source unpacks into qbittorrent-<version>/ and applies Debian's own quilt patches.
    (cd "$src_root" && apt_get source -qq qbittorrent)
    src_dir=$(ls -d "$src_root"/qbittorrent-"$qbt_version")
fi

# The series: one patch name per line in qbittorrent/series, applied with patch -p1 in order
# (quilt's layout). A copy of each applied patch is kept in .megatorrent-applied/: a re-run skips
# what is unchanged, and a patch that changed is reverted (with the patches after it) and
# re-applied, so that only the files it touches are rebuilt.
state="$src_dir/.megatorrent-applied"
mkdir -p "$state"
touch "$state/series"
mapfile -t old < "$state/series"
mapfile -t new < <(grep -v -e '^#' -e '^[[:space:]]*$' "$series")
keep=0
while ((keep < ${#old[@]} && keep < ${#new[@]})) && [[ ${old[keep]} == "${new[keep]}" ]] \
    && cmp -s "$state/${old[keep]}" "qbittorrent/${new[keep]}"; do
    keep=$((keep + 1))
done
for ((i = ${#old[@]} - 1; i >= keep; i--)); do
    echo "== reverting ${old[i]}"
    patch -d "$src_dir" -p1 -R --no-backup-if-mismatch -s <"$state/${old[i]}"
    rm "$state/${old[i]}"
    printf '%s\n' "${old[@]:0:i}" | grep -v '^$' >"$state/series" || true
done
for ((i = keep; i < ${#new[@]}; i++)); do
    echo "== applying ${new[i]}"
    patch -d "$src_dir" -p1 --forward --no-backup-if-mismatch -s <"qbittorrent/${new[i]}"
    cp "qbittorrent/${new[i]}" "$state/${new[i]}"
    echo "${new[i]}" >>"$state/series"
done

# qbittorrent-nox (GUI=OFF) on Qt 6; upstream's crash-trace handler and unit tests are left out.
cmake_args=(-S "$src_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DQT6=ON -DGUI=OFF -DSTACKTRACE=OFF -DTESTING=OFF)
# cargo builds the crate (release) into build/qbittorrent/cargo.
cmake_args+=(-DMEGATORRENT="$megatorrent" -DMEGATORRENT_SOURCE_DIR="$repo" -DMEGATORRENT_CARGO_TARGET_DIR="$repo/build/qbittorrent/cargo")
cmake "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "${QBT_JOBS:-$(nproc)}"
echo "qbittorrent.sh: built $build_dir/qbittorrent-nox"
