#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the end-to-end demo on
# the embedded defaults. The demo grows with the project; today it runs what exists (the key
# hierarchy, terminal and service certificates, a personalised card served through a real
# pcscd + vpcd, the benchmarks) and says what is next.
# Artifacts go to an output folder it names (default out/demo-<time>; override with $1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
echo "== building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release --target skillcard-keytool crypto_bench skillcard-personalise skillcard-sim applet_bench \
  skillcard-apdu

keytool=build/release/tools/skillcard-keytool
out=${1:-out/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$out")"
if [ -e "$out" ]; then echo "demo: $out already exists; name another folder" >&2; exit 2; fi
mkdir "$out"
out_abs=$(cd "$out" && pwd)
step() { printf '\n== %s\n' "$*"; }

step "1. province key hierarchy (docs/design.md, 'Keys and roles')"
"$keytool" init --out "$out/keys" --bureau 420100 --bureau 420500
echo "proved: every signer has its own P-256 key and kid; private keys and master keys are mode 0600:"
stat -c '   %a %n' "$out"/keys/*.key.pem "$out/keys/master-keys.toml" | head -3

step "2. the key tool never overwrites a key"
if "$keytool" init --out "$out/keys" 2>"$out/refusal.txt"; then
  echo "demo: FAILED — a second init overwrote keys" >&2; exit 1
fi
echo "proved: a second init is refused: $(cat "$out/refusal.txt")"

step "3. terminal certificates for each role (mTLS), and the service's server certificate"
"$keytool" terminal --keys "$out/keys" --out "$out/terminals" --id C0001 --role counter --region 420100
"$keytool" terminal --keys "$out/keys" --out "$out/terminals" --id S0001 --role site --region 420100 --site 10001
"$keytool" terminal --keys "$out/keys" --out "$out/terminals" --id K0001 --role kiosk --region 420100
"$keytool" terminal --keys "$out/keys" --out "$out/terminals" --id O0001 --role operator --region 420000
"$keytool" server --keys "$out/keys" --out "$out/service"
for cert in "$out"/terminals/*.cert.pem "$out"/service/service.cert.pem; do
  openssl verify -CAfile "$out/keys/province-root.cert.pem" -untrusted "$out/keys/terminal-ca.cert.pem" "$cert" \
    | sed 's/^/   /'
done
echo "proved: each certificate chains to the province root with OpenSSL's own verifier, and names its role:"
openssl x509 -in "$out/terminals/S0001.cert.pem" -noout -subject | sed 's/^/   /'

step "3b. a personalised card (docs/personalisation.md): keys, certificate, role key sets, PIN"
build/release/tools/skillcard-personalise --keys "$out/keys" --card-number 4201000001 \
  --citizen-id 11010519491231002X --region 420100 --pin 123456 --image "$out/card.img" --register "$out/cards.jsonl" \
  | sed 's/^/   /'
if build/release/tools/skillcard-personalise --keys "$out/keys" --card-number 4201000001 \
  --citizen-id 11010519491231002X --region 420100 --pin 123456 --image "$out/card.img" 2>"$out/refusal2.txt"; then
  echo "demo: FAILED — an image was overwritten" >&2; exit 1
fi
echo "proved: the image is never overwritten: $(cat "$out/refusal2.txt")"
echo "   serve it with: build/release/card_applet_sim/skillcard-sim --image $out/card.img (training applet by default)"
build/release/tools/bench/applet_bench | tee "$out/bench-applet.jsonl" ||
  echo "   (a goal above was missed on this run: benchmarks report, they do not stop the demo)"

step "3c. the card in a real PC/SC reader: private pcscd + vsmartcard vpcd + skillcard-sim"
pcsc="$out_abs/pcscd"
port=35993
tests/integration/pcscd_fixture.sh start "$pcsc" "$port" | sed 's/^/   /'
export PCSCLITE_CSOCK_NAME="$pcsc/run/pcscd.comm"
build/release/card_applet_sim/skillcard-sim --image "$out/card.img" --vpcd "127.0.0.1:$port" 2>"$out/sim.log" &
sim=$!
stop_pcsc() {
  kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
  tests/integration/pcscd_fixture.sh stop "$pcsc" >/dev/null
}
trap stop_pcsc EXIT
for _ in $(seq 1 50); do
  build/release/tools/skillcard-apdu list 2>/dev/null | grep -q "00 00: card present" && break
  sleep 0.2
done
build/release/tools/skillcard-apdu list | sed 's/^/   /'
# SELECT the training applet, then GET DATA 01 01 (card number) and 01 02 (region), in plain.
build/release/tools/skillcard-apdu send --reader "Virtual PCD 00 00" \
  00A404000BF0736B696C6C636172640100 00CA010100 00CA010200 2>/dev/null | sed 's/^/   /'
echo "proved: host code drives the simulated card through pcscd exactly as it drives a physical reader"
stop_pcsc
trap - EXIT

step "4. crypto benchmarks (JSON lines, baseline measured in the same run)"
build/release/tools/bench/crypto_bench | tee "$out/bench-crypto.jsonl" ||
  echo "   (a goal above was missed on this run: benchmarks report, they do not stop the demo)"

step "done"
cat <<MSG
Artifacts: $out_abs
  keys/        province root, terminal CA, voucher/card-CA/portfolio/audit signers (.pem), kids.json
  terminals/   counter, site, kiosk and operator client certificates
  service/     the verification service's TLS certificate
  bench-crypto.jsonl

  card.img, cards.jsonl   a personalised card image and its register line; bench-applet.jsonl

Built and tested, not yet in this story: the ledger (#7), the verification service (#8, first
endpoints), the policy engine and registry (#9). Next: the counter / site / kiosk story this
demo will run end to end through the service (#10).
MSG
