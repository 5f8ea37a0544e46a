#!/bin/sh
# Type-checks the corpus against the declarations actionsd renders for each trigger
# (src/runtime/api/surface.rs; write them with its ignored test `write_declarations`).
#
#   sh check.sh <directory holding <flow>-<trigger>.d.ts>
#
# Each script is checked on its own together with its trigger's declarations:
#   ok/<flow>-<trigger>/*.js   must have no error;
#   bad/<flow>-<trigger>/*.js  must have at least one error, and only errors whose codes its
#                              first line names (e.g. "// must fail (TS2551): ...").
set -u
types=${1:?usage: sh check.sh <directory with <flow>-<trigger>.d.ts files>}
here=$(cd "$(dirname "$0")" && pwd)
tsc="$here/node_modules/.bin/tsc"
[ -x "$tsc" ] || { echo "run npm ci in $here first" >&2; exit 2; }
status=0
checked=0

check() {
  "$tsc" --noEmit --checkJs --allowJs --strict false --lib es2022 "$types/$1.d.ts" "$2" 2>&1
}

for file in "$here"/ok/*/*.js; do
  trigger=$(basename "$(dirname "$file")")
  checked=$((checked + 1))
  if output=$(check "$trigger" "$file"); then
    echo "pass (ok)  ok/$trigger/$(basename "$file")"
  else
    echo "FAIL: ok/$trigger/$(basename "$file") must type-check:"
    echo "$output"
    status=1
  fi
done

for file in "$here"/bad/*/*.js; do
  trigger=$(basename "$(dirname "$file")")
  checked=$((checked + 1))
  codes=$(head -n 1 "$file" | grep -o 'TS[0-9][0-9]*' | sort -u)
  if [ -z "$codes" ]; then
    echo "FAIL: bad/$trigger/$(basename "$file") names no error code on its first line"
    status=1
    continue
  fi
  if output=$(check "$trigger" "$file"); then
    echo "FAIL: bad/$trigger/$(basename "$file") must not type-check"
    status=1
    continue
  fi
  found=$(echo "$output" | grep -o 'error TS[0-9][0-9]*' | sed 's/error //' | sort -u)
  unexpected=$(for c in $found; do echo "$codes" | grep -qx "$c" || echo "$c"; done)
  if [ -n "$unexpected" ]; then
    echo "FAIL: bad/$trigger/$(basename "$file") fails for another reason ($unexpected):"
    echo "$output"
    status=1
  else
    echo "pass (bad) bad/$trigger/$(basename "$file"): $(echo $found)"
  fi
done

echo "$checked scripts checked"
exit $status
