#!/usr/bin/env bash
# Integration test of skillcard-server over real TLS on 127.0.0.1 with client certificates made
# by skillcard-keytool for every role: role checks, a revoked terminal (reloaded without a
# restart), a certificate from another CA and none at all (refused at the handshake), a body
# over the limit, keep-alive, and a clean exit on SIGTERM.
# Usage: service_tls_test.sh KEYTOOL SERVER
set -euo pipefail
KEYTOOL=$1
SERVER=$2
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/err" ] && cat "$T/err" >&2; exit 1; }

K=$T/keys
"$KEYTOOL" init --out "$K" >/dev/null
"$KEYTOOL" server --keys "$K" --out "$T/srv" --ip 127.0.0.1 >/dev/null
"$KEYTOOL" terminal --keys "$K" --role counter --id C1 --region 420100 --out "$T/t" >/dev/null
"$KEYTOOL" terminal --keys "$K" --role site --id S1 --region 420100 --site 10001 --out "$T/t" >/dev/null
"$KEYTOOL" terminal --keys "$K" --role kiosk --id K1 --region 420100 --out "$T/t" >/dev/null
"$KEYTOOL" terminal --keys "$K" --role operator --id O1 --region 420100 --out "$T/t" >/dev/null
"$KEYTOOL" terminal --keys "$K" --role counter --id R1 --region 420100 --out "$T/t" >/dev/null
"$KEYTOOL" init --out "$T/other" >/dev/null
"$KEYTOOL" terminal --keys "$T/other" --role counter --id X1 --region 420100 --out "$T/x" >/dev/null

"$SERVER" --keys "$K" --tls-cert "$T/srv/service.cert.pem" --tls-key "$T/srv/service.key.pem" \
  --listen 127.0.0.1:0 --ledger "$T/ledger.sqlite" >"$T/out" 2>"$T/err" &
PID=$!
for _ in $(seq 300); do grep -q listening "$T/out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/.*:\([0-9]*\) (TLS)$/\1/p' "$T/out")
[ -n "$PORT" ] || fail "server did not start"
URL=https://127.0.0.1:$PORT

# call ID METHOD PATH [BODY] -> "status body"
call() {
  local id=$1 method=$2 path=$3 body=${4:-}
  curl -s --max-time 10 --cacert "$K/province-root.cert.pem" --cert "$T/t/$id.cert.pem" --key "$T/t/$id.key.pem" \
    -H 'Skillcard-Clerk: CLERK1' -X "$method" ${body:+--data-binary "$body"} -w ' %{http_code}' "$URL$path"
}
expect() {  # expect STATUS SUBSTRING ID METHOD PATH [BODY]
  local status=$1 text=$2
  shift 2
  local got
  got=$(call "$@") || fail "$* : curl failed"
  [ "${got##* }" = "$status" ] || fail "$* : status ${got##* }, expected $status: $got"
  [[ "$got" == *"$text"* ]] || fail "$* : no '$text' in $got"
}

for id in C1 S1 K1 O1; do expect 200 '"status":"ok"' $id GET /healthz; done
for id in C1 S1 K1 O1; do expect 200 '"trust_list":' $id GET /v1/trust-list; done
for id in C1 S1 K1; do expect 201 '"nonce":"01' $id POST /v1/nonces; done
expect 403 TERMINAL_ROLE_FORBIDDEN O1 POST /v1/nonces
expect 403 TERMINAL_ROLE_FORBIDDEN K1 POST /v1/vouchers '{}'
expect 403 TERMINAL_ROLE_FORBIDDEN S1 POST /v1/vouchers '{}'
expect 403 TERMINAL_ROLE_FORBIDDEN C1 POST /v1/redemptions '{}'
expect 403 TERMINAL_ROLE_FORBIDDEN S1 GET /metrics
expect 200 'skillcard_requests_total{route="POST /v1/nonces",status="201"} 3' O1 GET /metrics
expect 400 TOKEN_MALFORMED K1 POST /v1/vouchers/verify '{"token":"AAAA"}'
expect 400 '"field":"extra"' K1 POST /v1/vouchers/verify '{"token":"AAAA","extra":1}'
expect 400 '"field":"body"' K1 POST /v1/vouchers/verify '{"token":'
head -c 70000 /dev/zero | tr '\0' a >"$T/big"
# Over the body limit: a 400 naming the body (the service drains the upload before closing).
big=$(call K1 POST /v1/vouchers/verify "@$T/big" || true)
[[ "$big" == *'"field":"body"'*' 400' ]] || fail "oversize body: $big"
expect 200 '"status":"ok"' K1 GET /healthz

# Every answer carries the service's Date (offline terminals take their time from it).
curl -s -D - -o /dev/null --cacert "$K/province-root.cert.pem" --cert "$T/t/C1.cert.pem" --key "$T/t/C1.key.pem" \
  "$URL/healthz" | grep -qi '^date: [A-Z][a-z][a-z], [0-9][0-9] [A-Z][a-z][a-z] 20[0-9][0-9] [0-9:]* GMT' || fail "no Date header"

# Keep-alive: two requests, one connection.
n=$(curl -s -v --cacert "$K/province-root.cert.pem" --cert "$T/t/C1.cert.pem" --key "$T/t/C1.key.pem" \
  "$URL/healthz" "$URL/healthz" 2>&1 | grep -c 'Re-using existing connection' || true)
[ "$n" -ge 1 ] || fail "keep-alive: the second request did not reuse the connection"

# Revoked without a restart: the list is re-read on the next connection.
expect 200 '"status":"ok"' R1 GET /healthz
echo "R1" >"$K/terminal-revocations.txt"
expect 403 TERMINAL_REVOKED R1 GET /healthz
expect 200 '"status":"ok"' C1 GET /healthz

# Another CA's certificate, and no certificate: refused at the handshake.
if curl -s --max-time 10 --cacert "$K/province-root.cert.pem" --cert "$T/x/X1.cert.pem" --key "$T/x/X1.key.pem" \
  "$URL/healthz" >/dev/null; then fail "a certificate from another CA was accepted"; fi
if curl -s --max-time 10 --cacert "$K/province-root.cert.pem" "$URL/healthz" >/dev/null; then
  fail "a connection without a client certificate was accepted"
fi
grep -q 'TLS handshake refused' "$T/err" || fail "no handshake refusal logged"

kill -TERM "$PID"
wait "$PID" || fail "server exit status $? after SIGTERM"
PID=
grep -q stopped "$T/err" || fail "no clean stop"
# Structured logs: every line one JSON object; an access-log line per answered request, with the
# refusal code, and never a token or a body.
if grep -qv '^{"ts":"[0-9T:.-]*Z","level":"[a-z]*","event":"' "$T/err"; then fail "a log line is not JSON: $(grep -v '^{"ts"' "$T/err" | head -1)"; fi
grep -q '"event":"request","terminal":"K1","role":"kiosk","method":"POST","path":"/v1/vouchers/verify","status":400,.*"error":"TOKEN_MALFORMED"' "$T/err" \
  || fail "no access-log line for the refused verify"
if grep -q 'AAAA' "$T/err"; then fail "a token reached the log"; fi

# The service's key folder holds the holder-reference secret and no SCP03 master (keytool
# role-keys --role service): it starts on that. A stray voucher-signer-<bureau>.old.key.pem is
# refused at start, naming the file (it would have signed with a key not on the trust list).
S=$T/service-keys
cp -r "$K" "$S"
rm "$S/master-keys.toml"
"$KEYTOOL" role-keys --keys "$K" --role service --out "$S/master-keys.toml" >/dev/null
if grep -q '\[scp03\]' "$S/master-keys.toml"; then fail "the service's key file holds an SCP03 master"; fi
start_with() {  # start_with KEYS: runs the server on KEYS until it listens (0) or exits (1)
  "$SERVER" --keys "$1" --tls-cert "$T/srv/service.cert.pem" --tls-key "$T/srv/service.key.pem" \
    --listen 127.0.0.1:0 --ledger "$T/ledger2.sqlite" >"$T/out2" 2>"$T/err2" &
  PID=$!
  for _ in $(seq 300); do
    grep -q listening "$T/out2" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || { PID=; return 1; }
    sleep 0.1
  done
  return 1
}
start_with "$S" || fail "the service did not start on a holder-only key file: $(cat "$T/err2")"
kill -TERM "$PID"; wait "$PID" || true; PID=
cp "$S/voucher-signer-420100.key.pem" "$S/voucher-signer-420100.old.key.pem"
if start_with "$S"; then fail "the service started with a stray voucher-signer-420100.old.key.pem"; fi
grep -q 'voucher-signer-420100.old.key.pem' "$T/err2" || fail "the refusal does not name the stray file: $(cat "$T/err2")"

# keytool refuses, before writing anything: a site id the service could not read, a repeated bureau.
if "$KEYTOOL" terminal --keys "$K" --role site --id S9 --region 420100 --site S-10001 --out "$T/t9" 2>/dev/null; then
  fail "keytool issued a site certificate with a site id the service cannot read"
fi
[ ! -e "$T/t9/S9.cert.pem" ] || fail "keytool wrote a certificate it refused"
if "$KEYTOOL" init --out "$T/dup" --bureau 420100 --bureau 420100 2>/dev/null; then fail "init took a repeated bureau"; fi
[ -z "$(ls -A "$T/dup" 2>/dev/null)" ] || fail "init wrote keys before refusing a repeated bureau: $(ls "$T/dup")"
# A password on the command line is refused before anything is opened, without echoing it.
set +e
"$SERVER" --keys "$K" --insecure-loopback --listen 127.0.0.1:0 \
  --pg "host=127.0.0.1 dbname=none password=hunter2-secret" >/dev/null 2>"$T/err3"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a --pg password was not refused with exit 2 (got $rc): $(cat "$T/err3")"
grep -q 'PGPASSFILE' "$T/err3" || fail "the refusal does not say where the password goes: $(cat "$T/err3")"
if grep -q 'hunter2-secret' "$T/err3"; then fail "the refusal printed the password"; fi

echo "service TLS integration: ok"
