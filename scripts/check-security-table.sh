#!/usr/bin/env bash
# Check that every test named in docs/SECURITY.md (`path::function`) exists in that file.
# Whether they pass is `cargo test`'s job.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
count=0
while read -r ref; do
    file="${ref%%::*}"
    fn="${ref##*::}"
    count=$((count + 1))
    if ! grep -Eq "fn ${fn}\(" "$file" 2>/dev/null; then
        echo "missing: $ref"
        missing=$((missing + 1))
    fi
done < <(grep -oE '`(src|tests)/[a-z0-9_/]+\.rs::[a-z0-9_]+`' docs/SECURITY.md | tr -d '`' | sort -u)
echo "$count test references, $missing missing"
[ "$missing" -eq 0 ]
