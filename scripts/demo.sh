#!/usr/bin/env bash
# The README's main command: installs what is missing, builds (release preset), and runs the
# end-to-end story on the embedded defaults: keys and certificates, a personalised card served
# through a real pcscd + vpcd, the verification service on SQLite, and the counter, training
# site and kiosk through the `skillcard` CLI — each step says what it proved. It stops
# everything it started and leaves its artifacts in the output folder it names
# (default out/demo-<time>; override with $1). Exit status 0 only if every step proved its point.
set -euo pipefail
cd "$(dirname "$0")/.."

# SKILLCARD_DEMO_BUILD: an existing build folder to take the programs from (the test command
# runs the demo on its ci build); by default the release preset is built here.
B=${SKILLCARD_DEMO_BUILD:-}
if [ -z "$B" ]; then
  bash scripts/install-deps.sh >/dev/null
  echo "== building (release preset)"
  cmake --preset release >/dev/null
  cmake --build --preset release -j2 --target skillcard-keytool skillcard-personalise skillcard-sim skillcard-apdu \
    skillcard-server skillcard skillcard-report skillcard-ledger
  B=build/release
fi
out=${1:-out/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$out")"
if [ -e "$out" ]; then echo "demo: $out already exists; name another folder" >&2; exit 2; fi
mkdir -p "$out"/{tokens,receipts,reports,logs}
out=$(cd "$out" && pwd)
started=$(date +%s)
step() { printf '\n== %s\n' "$*"; }
proved() { printf '   proved: %s\n' "$*"; }
fail() { printf 'demo: FAILED — %s\n' "$*" >&2; exit 1; }

# Everything started is stopped on any exit.
server_pid=
sim_pid=
pcsc=$out/pcscd
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -d "$pcsc" ] && tests/integration/pcscd_fixture.sh stop "$pcsc" >/dev/null 2>&1
  true
}
trap cleanup EXIT

holder=420102199003071232 # 张三: a registered unemployed worker (key group), born 1990
card=4201000001
pin=123456

step "1. keys and certificates (docs/design.md, 'Keys and roles')"
$B/tools/skillcard-keytool init --out "$out/keys" --bureau 420100 >/dev/null
for t in "C0001 counter" "K0001 kiosk" "O0001 operator"; do
  set -- $t
  $B/tools/skillcard-keytool terminal --keys "$out/keys" --out "$out/terminals" --id "$1" --role "$2" \
    --region 420100 >/dev/null
done
$B/tools/skillcard-keytool terminal --keys "$out/keys" --out "$out/terminals" --id S0001 --role site \
  --region 420100 --site 10001 >/dev/null
$B/tools/skillcard-keytool server --keys "$out/keys" --out "$out/service" --ip 127.0.0.1 >/dev/null
# Each card terminal holds its own role's SCP03 master only (design.md, "Where keys live").
for t in "C0001 counter" "S0001 site" "K0001 kiosk"; do
  set -- $t
  $B/tools/skillcard-keytool role-keys --keys "$out/keys" --role "$2" --out "$out/terminals/$1.masters.toml" >/dev/null
done
grep -q "counter\|kiosk\|secret" "$out/terminals/S0001.masters.toml" && fail "the site's key file holds more than M_site"
proved "province root, voucher signer 420100, card CA, portfolio and audit signers, terminal CA; a client certificate per role; each card terminal's key file holds its role's master only; every private key 0600"

step "2. the registry of record and the region's policy"
cat >"$out/people.csv" <<CSV
citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups
$holder,张三,420100,1990-03-07,1,0,0,registered_unemployed
CSV
cat >"$out/policy.toml" <<'TOML'
# POLICY.md defaults; the P7 standard for key-group employment-skills training at level 4.
[[standards]]
programme = 3
occupation = "*"
level = 4
amount_fen = 150000
TOML
proved "the holder is known to the registry (P13) as registered unemployed (a P5 key group)"

step "3. a personalised card (docs/personalisation.md)"
$B/tools/skillcard-personalise --keys "$out/keys" --card-number $card --citizen-id $holder --region 420100 \
  --pin-fd 3 --image "$out/card.img" --register "$out/cards.jsonl" 3<<<"$pin" | sed 's/^/   /'
proved "the card holds its own keys, a certificate from the card CA and the role key sets; the PIN is set"

step "4. the verification service on SQLite, over mutual TLS"
$B/server/service/skillcard-server --keys "$out/keys" --tls-cert "$out/service/service.cert.pem" \
  --tls-key "$out/service/service.key.pem" --listen 127.0.0.1:0 --ledger "$out/ledger.sqlite" \
  --policy "$out/policy.toml" --registry "$out/people.csv" >"$out/logs/server.out" 2>"$out/logs/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q listening "$out/logs/server.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\) (TLS)$/\1/p' "$out/logs/server.out")
[ -n "$port" ] || fail "the service did not start: $(cat "$out/logs/server.log")"
api() { # api TERMINAL METHOD PATH [BODY]
  curl -sS --cacert "$out/keys/province-root.cert.pem" --cert "$out/terminals/$1.cert.pem" \
    --key "$out/terminals/$1.key.pem" -H 'Skillcard-Clerk: demo' -X "$2" ${4:+--data-binary "$4"} \
    "https://127.0.0.1:$port$3"
}
api O0001 POST /v1/budgets '{"fund":1,"allocated_fen":100000000}' >/dev/null
certificate=$(sed -n 's/.*"certificate":"\([^"]*\)".*/\1/p' "$out/cards.jsonl")
api C0001 POST /v1/cards "{\"certificate\":\"$certificate\",\"citizen_id\":\"$holder\"}" >"$out/logs/register.json"
grep -q '"state":"active"' "$out/logs/register.json" || fail "card registration: $(cat "$out/logs/register.json")"
api C0001 GET /v1/trust-list | sed -n 's/.*"trust_list":"\([^"]*\)".*/\1/p' >"$out/trust-list.b64"
proved "service on 127.0.0.1:$port; the operator funded the special account (P16); the counter registered card $card"

step "5. the card in a real PC/SC reader: private pcscd + vsmartcard vpcd + skillcard-sim"
vport=29993  # below the ephemeral port range: no outgoing connection can be holding it
tests/integration/pcscd_fixture.sh start "$pcsc" "$vport" >/dev/null
export PCSCLITE_CSOCK_NAME="$pcsc/run/pcscd.comm"
$B/card_applet_sim/skillcard-sim --image "$out/card.img" --vpcd "127.0.0.1:$vport" 2>"$out/logs/sim.log" &
sim_pid=$!
for _ in $(seq 100); do $B/tools/skillcard-apdu list 2>/dev/null | grep -q "card present" && break; sleep 0.1; done
$B/tools/skillcard-apdu list | sed 's/^/   /'
proved "the host drives the simulated card through pcscd exactly as it drives a physical reader"

# The CLI as each terminal runs it. PINs come from file descriptor 3 (the keypad in real life).
cli() { # cli TERMINAL ARGS...   (CLI_EXEC=1: exec, so that `cli … &` leaves $! the program's pid)
  local t=$1
  shift
  ${CLI_EXEC:+exec} $B/host/skillcard --lang "${CLI_LANG:-en}" --service 127.0.0.1:$port --ca "$out/keys/province-root.cert.pem" \
    --root "$out/keys/province-root.cert.pem" --cert "$out/terminals/$t.cert.pem" --key "$out/terminals/$t.key.pem" \
    --master-keys "$out/terminals/$t.masters.toml" --clerk demo --trust-list "$out/logs/trust-$t.cose" "$@"
}
expect_exit() { # expect_exit CODE LOGNAME COMMAND...
  local want=$1 log=$2 got=0
  shift 2
  "$@" >"$out/logs/$log.json" 2>"$out/logs/$log.err" || got=$?
  [ "$got" = "$want" ] || fail "$log: exit $got, expected $want: $(cat "$out/logs/$log.json" "$out/logs/$log.err")"
}

step "6. counter: three vouchers for the holder (genuineness check, policy, signed token, STORE VOUCHER)"
expect_exit 0 counter-read cli C0001 counter read
sed 's/^/   /' "$out/logs/counter-read.json"
grep -q "card: $card (genuine)" "$out/logs/counter-read.json" || fail "counter read: $(cat "$out/logs/counter-read.json")"
vouchers=()
for occupation in 4-04-05-05 4-04-05-06 4-04-05-07; do
  expect_exit 0 "issue-$occupation" cli C0001 --json counter issue --citizen-id $holder --programme 3 \
    --occupation $occupation --level 4 --fund 1 --hours 120 --online-hours 36 --provider 10001
  id=$(sed -n 's/.*"voucher_id":"\([0-9a-f]*\)".*/\1/p' "$out/logs/issue-$occupation.json" | head -1)
  [ -n "$id" ] || fail "no voucher id in $(cat "$out/logs/issue-$occupation.json")"
  sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$out/logs/issue-$occupation.json" | head -1 >"$out/tokens/$id.b64"
  vouchers+=("$id")
  echo "   voucher $id for occupation $occupation: ¥1800.00 (P7 ¥1500 + P5 20% for a key group), on the card"
done
proved "each voucher is in the ledger and on the card (written), signed by the bureau's voucher signer"

step "7. training site: redeem one with the holder's PIN (≤ 5 card exchanges, card-signed receipt)"
expect_exit 0 redeem cli S0001 --pin-fd 3 --json site --queue "$out/logs/site-queue.sqlite" redeem --site 10001 \
  --region 420100 --classroom-hours 84 --online-hours 36 --voucher "${vouchers[0]}" 3<<<"$pin"
sed -n 's/.*"receipt":"\([^"]*\)".*/\1/p' "$out/logs/redeem.json" | head -1 >"$out/receipts/${vouchers[0]}.b64"
grep -o '"receipt_id":"[0-9a-f]*"' "$out/logs/redeem.json" | head -1 | sed 's/^/   /'
proved "the card signed a receipt over the service's nonce; the ledger recorded it exactly once"

step "8. the same voucher again is refused"
expect_exit 7 redeem-again cli S0001 --pin-fd 3 --json site --queue "$out/logs/site-queue.sqlite" redeem --site 10001 \
  --region 420100 --classroom-hours 84 --online-hours 36 --voucher "${vouchers[0]}" 3<<<"$pin"
grep -q P15_ALREADY_REDEEMED "$out/logs/redeem-again.json" || fail "redeem-again: $(cat "$out/logs/redeem-again.json")"
grep -q '"rules":\["P15"\]' "$out/logs/redeem-again.json" || fail "redeem-again names no rule: $(cat "$out/logs/redeem-again.json")"
proved "P15: a voucher is redeemed once — the card's own record says so, no REDEEM is sent ($(grep -o '"en":"[^"]*"' "$out/logs/redeem-again.json" | head -1))"

step "9. a fourth subsidy in the calendar year is refused (P1)"
expect_exit 3 issue-4th cli C0001 --json counter issue --citizen-id $holder --programme 3 --occupation 4-04-05-08 \
  --level 4 --fund 1 --hours 120 --online-hours 36 --provider 10001
grep -q P1_ANNUAL_LIMIT "$out/logs/issue-4th.json" || fail "4th issue: $(cat "$out/logs/issue-4th.json")"
proved "P1 refused with the rule and a message in both languages: $(grep -o '"zh-CN":"[^"]*"' "$out/logs/issue-4th.json" | head -1)"

step "10. counter: a skill-level certificate into the e-portfolio (P14) and the card's signed digest"
expect_exit 0 certificate cli C0001 --json counter certificate --citizen-id $holder --kind 3 --occupation 4-04-05-05 \
  --level 4 --issuer "湖北省职业技能鉴定指导中心" --number S4201002026000001 --date 2026-06-30
expect_exit 3 certificate-again cli C0001 --json counter certificate --citizen-id $holder --kind 3 \
  --occupation 4-04-05-05 --level 4 --issuer "湖北省职业技能鉴定指导中心" --number S4201002026000001 --date 2026-06-30
grep -q P14_CERTIFICATE_DUPLICATE "$out/logs/certificate-again.json" || fail "P14: $(cat "$out/logs/certificate-again.json")"
proved "recorded once; the same certificate again is refused (P14), never asked for on paper"

step "11. kiosk: after the PIN, the holder's vouchers and verified portfolio (read-only)"
expect_exit 0 kiosk cli K0001 --pin-fd 3 kiosk show 3<<<"$pin"
sed 's/^/   /' "$out/logs/kiosk.json"
echo
CLI_LANG=zh-CN expect_exit 0 kiosk-zh cli K0001 --pin-fd 3 kiosk show 3<<<"$pin"
sed 's/^/   /' "$out/logs/kiosk-zh.json"
grep -q "已核销" "$out/logs/kiosk-zh.json" || fail "kiosk in Chinese: $(cat "$out/logs/kiosk-zh.json")"
expect_exit 0 kiosk-json cli K0001 --pin-fd 3 --json kiosk show 3<<<"$pin"
# A kiosk clears the screen once the card is out; the card stays in here, so after the limit.
expect_exit 0 kiosk-clear cli K0001 --pin-fd 3 kiosk show --vouchers --clear-on-removal --clear-after 1 3<<<"$pin"
[ "$(tail -c 4 "$out/logs/kiosk-clear.json" | od -An -tx1 | tr -d ' \n')" = 1b5b324a ] ||
  fail "kiosk: the screen was not cleared: $(od -c "$out/logs/kiosk-clear.json" | tail -3)"
# Ended by a signal while it waits for the card to be taken (a supervisor's restart): cleared too.
CLI_EXEC=1 cli K0001 --pin-fd 3 kiosk show --vouchers --clear-on-removal --clear-after 60 3<<<"$pin" \
  >"$out/logs/kiosk-term.json" 2>"$out/logs/kiosk-term.err" &
kiosk_pid=$!
for _ in $(seq 150); do grep -q "take the card" "$out/logs/kiosk-term.json" && break; sleep 0.1; done
kill -TERM "$kiosk_pid"
wait "$kiosk_pid" || true
[ "$(tail -c 4 "$out/logs/kiosk-term.json" | od -An -tx1 | tr -d ' \n')" = 1b5b324a ] ||
  fail "kiosk: SIGTERM left the records on screen: $(od -c "$out/logs/kiosk-term.json" | tail -3)"
# The terminal holds a PC/SC transaction for the whole command: while it waits for the PIN,
# another application's APDUs (here skillcard-apdu's) wait too, never landing among the kiosk's.
rm -f "$out/pin.fifo" && mkfifo "$out/pin.fifo"
cli K0001 --pin-fd 3 --json kiosk show --vouchers 3<"$out/pin.fifo" >"$out/logs/kiosk-held.json" \
  2>"$out/logs/kiosk-held.err" &
held_pid=$!
exec 4>"$out/pin.fifo"
held=no
for _ in $(seq 40); do
  got=0
  timeout 0.5 $B/tools/skillcard-apdu send 00A4040000 >/dev/null 2>&1 || got=$?
  if [ "$got" = 124 ]; then held=yes && break; fi
  sleep 0.2
done
echo "$pin" >&4
exec 4>&-
got=0 && wait $held_pid || got=$?
[ "$held" = yes ] || fail "kiosk: another application's APDU got in while the kiosk held the card"
[ "$got" = 0 ] || fail "kiosk with a held transaction: exit $got: $(cat "$out/logs/kiosk-held.err")"
# A holder who walks away from the PIN prompt does not keep the reader: after --pin-timeout the
# command ends (ENTRY_TIMEOUT, nothing done) and the next application's APDU goes through.
rm -f "$out/pin.fifo" && mkfifo "$out/pin.fifo"
exec 4<>"$out/pin.fifo" # open, never written
expect_exit 7 kiosk-walked-away cli K0001 --pin-fd 4 --pin-timeout 5 --json kiosk show --vouchers
exec 4>&-
grep -q '"error":"ENTRY_TIMEOUT"' "$out/logs/kiosk-walked-away.json" ||
  fail "kiosk: no ENTRY_TIMEOUT: $(cat "$out/logs/kiosk-walked-away.json" "$out/logs/kiosk-walked-away.err")"
got=0 && timeout 5 $B/tools/skillcard-apdu send 00A4040000 >/dev/null 2>&1 || got=$?
[ "$got" != 124 ] || fail "kiosk: the reader stayed held after the PIN time limit"
proved "records checked against the card's signed digest; the service answered only with the card's proof; the screen cleared after the card (here: the time limit); another application's APDUs wait while the kiosk holds the card, and no longer than the PIN time limit"

step "12. counter: a PIN is reset only for the card's holder (identity document checked at the service)"
other=11010519491231002X # another person's (valid) citizen ID
expect_exit 3 reset-other cli C0001 --pin-fd 3 --json counter reset-pin --citizen-id $other 3<<<"135790"
grep -q P13_REGISTRY_MISMATCH "$out/logs/reset-other.json" || fail "reset for another person: $(cat "$out/logs/reset-other.json")"
echo "   another person's ID: $(grep -o '"en":"[^"]*"' "$out/logs/reset-other.json" | head -1)"
expect_exit 0 reset cli C0001 --pin-fd 3 counter reset-pin --citizen-id $holder 3<<<"135790"
sed 's/^/   /' "$out/logs/reset.json"
expect_exit 0 kiosk-new-pin cli K0001 --pin-fd 3 --json kiosk show --vouchers 3<<<"135790"
proved "another person's identity document is refused (P13) before the card is touched; the holder's resets it, and the new PIN opens the kiosk"

step "13. operator: monthly report (P18), progress (P19), settlement and reconciliation (P17)"
echo "citizen_id,source,issued_on,fund,occupation,level" >"$out/subsidies.csv"
$B/server/reports/skillcard-report import-registry --registry "$out/registry.sqlite" --people "$out/people.csv" \
  --subsidies "$out/subsidies.csv" --master-keys "$out/keys/master-keys.toml" >/dev/null
year=$(TZ=Asia/Shanghai date +%Y)
month=$(TZ=Asia/Shanghai date +%-m)
report() { # report NAME ARGS...
  local name=$1
  shift
  $B/server/reports/skillcard-report "$name" --ledger "$out/ledger.sqlite" "$@" --json >"$out/reports/$name.json" \
    2>"$out/logs/report-$name.err" || fail "report $name: $(cat "$out/reports/$name.json" "$out/logs/report-$name.err")"
  $B/server/reports/skillcard-report "$name" --ledger "$out/ledger.sqlite" "$@" | sed 's/^/   /'
}
report monthly --registry "$out/registry.sqlite" --year "$year" --month "$month"
report progress --registry "$out/registry.sqlite" --year "$year" --month "$month"
report settlement --year "$year" --month "$month"
report reconcile
proved "the redemption is counted once (P18), owed to provider 10001, and the ledger, the budget and the card's counters agree (P17)"

step "14. the published keys verify every token offline; the audit chain matches a signed checkpoint"
for f in "$out"/tokens/*.b64; do
  $B/tools/skillcard-keytool verify --key "$out/keys/voucher-signer-420100.pub.pem" --cose "$(cat "$f")" >/dev/null ||
    fail "token $(basename "$f") does not verify with voucher-signer-420100.pub.pem"
done
for f in "$out"/receipts/*.b64; do
  [ -s "$f" ] || fail "no receipt saved in $f"
done
$B/ledger/skillcard-ledger checkpoint --db "$out/ledger.sqlite" --key "$out/keys/audit-signer.key.pem" \
  --out "$out/audit-checkpoint.cose" >"$out/logs/checkpoint.txt" || fail "audit checkpoint"
$B/ledger/skillcard-ledger verify-audit --db "$out/ledger.sqlite" --key "$out/keys/audit-signer.pub.pem" \
  --checkpoint "$out/audit-checkpoint.cose" >"$out/logs/audit.txt" || fail "audit chain: $(cat "$out/logs/audit.txt")"
sed 's/^/   /' "$out/logs/audit.txt" | head -3
proved "${#vouchers[@]} tokens verify with voucher-signer-420100.pub.pem; the audit chain matches a signed checkpoint"

cleanup
trap - EXIT
step "done in $(($(date +%s) - started)) s"
cat <<MSG
Artifacts in $out:
  keys/, terminals/, service/   key hierarchy and certificates (keys/*.pub.pem: the signers' public keys)
  tokens/, receipts/            the voucher tokens and the card-signed receipt (base64url)
  trust-list.b64                the signed trust list the service published
  reports/                      monthly report, reconciliation and settlement (JSON)
  audit-checkpoint.cose         a signed checkpoint of the ledger's audit chain
  ledger.sqlite, logs/          the ledger and every step's output
MSG
