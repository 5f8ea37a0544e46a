#!/usr/bin/env bash
# ZITADEL connector benchmark (release build, loopback only): signed connector calls of a
# `preaccesstoken` function payload (~1 KB) against `_execute` of the same Complement Token action
# with the equivalent context, in the same run:
#  (a) throughput and latency at 32 connections;
#  (b) the overhead at concurrency 1 (p50 of the connector minus p50 of `_execute`).
# The signature is computed once; the connection's 300 s tolerance covers the run.
# Env: DURATION (default 8s), SHORT (default 5s, for (b)); BIN=/path/to/actionsd to skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
DURATION=${DURATION:-8s}
SHORT=${SHORT:-5s}
PORT=${PORT:-18095}
BIN=$(release_binary)
WORK=$(mktemp -d)
SERVER_PID=
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)
BASE="http://127.0.0.1:$PORT"
auth=(-H "Authorization: Bearer $TOKEN")

(cd "$WORK" && RUST_LOG=warn ACTIONSD_DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc" ACTIONSD_ADDR="127.0.0.1:$PORT" \
  ACTIONSD_ADMIN_TOKEN="$TOKEN" exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "$BASE/debug/ready" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
SCRIPT=$(python3 -c 'import json; print(json.dumps(open("src/runtime/bench.rs").read().split("r#\"")[1].split("\"#")[0]))')
ACTION=$(curl -sf "$BASE/management/v1/actions" "${auth[@]}" -d "{\"name\": \"addClaims\", \"script\": $SCRIPT}" | json '["id"]')
curl -sf "$BASE/management/v1/flows/2/trigger/5" "${auth[@]}" -d "{\"actionIds\": [\"$ACTION\"]}" >/dev/null
ORG=$(curl -sf "$BASE/management/v1/orgs/me" "${auth[@]}" | json '["org"]["id"]')
KEY=bench-signing-key-0123456789
CONN=$(curl -sf "$BASE/connector/v1/connections" "${auth[@]}" -d "{\"name\": \"bench\", \"signingKeys\": [\"$KEY\"]}" | json '["id"]')
curl -sf -X PUT "$BASE/connector/v1/connections/$CONN/orgs/zorg" "${auth[@]}" -d "{\"orgId\": \"$ORG\"}" >/dev/null

# The same data twice: as ZITADEL's function payload and as the _execute context.
python3 - "$WORK" "$KEY" <<'PY'
import hashlib, hmac, json, sys, time
work, key = sys.argv[1], sys.argv[2]
claims = {"sub": "312", "email": "ann@example.com", "email_verified": True, "name": "Ann Lee", "locale": "en",
          "urn:zitadel:iam:org:id": "zorg", "preferred_username": "ann@example.com"}
user = {"id": "312", "resource_owner": "zorg", "state": 1, "username": "ann@example.com",
        "preferred_login_name": "ann@example.com",
        "human": {"first_name": "Ann", "last_name": "Lee", "display_name": "Ann Lee", "preferred_language": "en",
                  "gender": 1, "email": "ann@example.com", "is_email_verified": True}}
payload = {"function": "function/preaccesstoken", "userinfo": claims, "user": user,
           "user_metadata": [{"key": "tier", "value": "Z29sZA=="}],
           "org": {"id": "zorg", "name": "Example", "primary_domain": "example.com"},
           "user_grants": [{"id": "g1", "project_id": "p1", "grant_id": "pg1", "roles": ["admin", "user"],
                            "project_name": "App"}],
           "application": {"client_id": "client-1"}}
body = json.dumps(payload, separators=(",", ":"))
t = int(time.time())
sig = hmac.new(key.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
context = {"context": {"claims": claims, "user": {"id": "312", "username": "ann@example.com",
           "human": {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.com"}},
           "userMetadata": [{"key": "tier", "value": "Z29sZA=="}],
           "userGrants": [{"projectId": "p1", "projectGrantId": "pg1", "roles": ["admin", "user"]}],
           "org": {"id": "zorg", "primaryDomain": "example.com"}, "application": {"clientId": "client-1"}}}
lua = lambda b, extra: ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' + extra +
                        "wrk.body = [==[" + b + "]==]\n")
open(f"{work}/connector.lua", "w").write(lua(body, f'wrk.headers["ZITADEL-Signature"] = "t={t},v1={sig}"\n'))
open(f"{work}/execute.lua", "w").write(lua(json.dumps(context), ""))
print(f"payload: {len(body)} bytes")
PY

CALL="$BASE/connector/v1/connections/$CONN/call"
EXECUTE="$BASE/management/v1/flows/2/trigger/5/_execute"
curl -sf "$CALL" -H "ZITADEL-Signature: $(grep -o 't=[0-9]*,v1=[0-9a-f]*' "$WORK/connector.lua")" \
  --data-binary "$(sed -n 's/^wrk.body = \[==\[\(.*\)\]==\]$/\1/p' "$WORK/connector.lua")" | head -c 300
echo
echo
echo "| (a) 32 connections, $DURATION | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
wrk -t2 -c32 -d2s "${auth[@]}" -s "$WORK/execute.lua" "$EXECUTE" >/dev/null
wrk -t2 -c32 -d"$DURATION" --latency "${auth[@]}" -s "$WORK/execute.lua" "$EXECUTE" | summary "_execute"
wrk -t2 -c32 -d2s -s "$WORK/connector.lua" "$CALL" >/dev/null
wrk -t2 -c32 -d"$DURATION" --latency -s "$WORK/connector.lua" "$CALL" | summary "connector call"
echo
echo "| (b) 1 connection, $SHORT | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
wrk -t1 -c1 -d"$SHORT" --latency "${auth[@]}" -s "$WORK/execute.lua" "$EXECUTE" | summary "_execute"
wrk -t1 -c1 -d"$SHORT" --latency -s "$WORK/connector.lua" "$CALL" | summary "connector call"
