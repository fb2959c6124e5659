#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the end-to-end demo on
# the embedded defaults. The demo grows with the project; today it runs what exists (the key
# hierarchy, terminal and service certificates, the crypto benchmarks) and says what is next.
# Artifacts go to an output folder it names (default out/demo-<time>; override with $1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
echo "== building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release --target skillcard-keytool crypto_bench skillcard-personalise skillcard-sim applet_bench

keytool=build/release/tools/skillcard-keytool
out=${1:-out/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$out")"
if [ -e "$out" ]; then echo "demo: $out already exists; name another folder" >&2; exit 2; fi
mkdir "$out"
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
build/release/tools/bench/applet_bench | tee "$out/bench-applet.jsonl"

step "4. crypto benchmarks (JSON lines, baseline measured in the same run)"
build/release/tools/bench/crypto_bench | tee "$out/bench-crypto.jsonl"

step "done"
cat <<MSG
Artifacts: $root/$out
  keys/        province root, terminal CA, voucher/card-CA/portfolio/audit signers (.pem), kids.json
  terminals/   counter, site, kiosk and operator client certificates
  service/     the verification service's TLS certificate
  bench-crypto.jsonl

  card.img, cards.jsonl   a personalised card image and its register line; bench-applet.jsonl

Not built yet (open issues):
PC/SC through pcscd + vpcd (#6), the ledger (#7), the verification service (#8), the policy
engine (#9), and the counter / site / kiosk story this demo will run end to end (#10).
MSG
