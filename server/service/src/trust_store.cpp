#include "skillcard/service/trust_store.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/crypto/x509.hpp"

namespace skillcard::service {

namespace fs = std::filesystem;
using schemas::TrustRole;

namespace {

std::optional<crypto::EcPublicKey> point_of(const Bytes& spki) {
  if (spki.size() != 91) return std::nullopt;
  try {
    auto key = crypto::EcPublicKey::from_uncompressed(ByteView(spki).subspan(26));
    if (key.spki_der() != spki) return std::nullopt;
    return key;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uint32_t region_code(const std::string& text, const std::string& what) {
  if (text.size() != 6 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw TrustStoreError(what + ": '" + text + "' is not a 6-digit region code");
  }
  return static_cast<std::uint32_t>(std::stoul(text));
}

}  // namespace

TrustStore::TrustStore(schemas::TrustListClaims claims, Bytes signed_list)
    : claims_(std::move(claims)), signed_(std::move(signed_list)) {
  for (const auto& [kid, entry] : claims_.entries) {
    const auto point = point_of(entry.spki);
    if (!point) throw TrustStoreError("trust list entry " + to_hex(kid) + ": not a P-256 SubjectPublicKeyInfo");
    try {
      (void)cache_.get(*point);
    } catch (const std::exception& e) {
      throw TrustStoreError("trust list entry " + to_hex(kid) + ": " + e.what());
    }
  }
}

std::unique_ptr<TrustStore> TrustStore::from_signed_list(ByteView signed_list, const crypto::EcPublicKey& root) {
  std::optional<schemas::Signed<schemas::TrustListClaims>> decoded;
  try {
    decoded = schemas::decode_trust_list(signed_list);
  } catch (const std::exception& e) {
    throw TrustStoreError(std::string("trust list does not decode: ") + e.what());
  }
  if (decoded->kid != crypto::kid_of<crypto::OpenSsl>(root)) {
    throw TrustStoreError("trust list is signed by kid " + to_hex(decoded->kid) + ", not the pinned province root");
  }
  const auto verdict = decoded->envelope.verify(
      [&](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(root, tbs, sig); });
  if (!verdict.ok()) throw TrustStoreError("trust list signature: " + verdict.reason);
  if (const auto bad = schemas::first_kid_mismatch<crypto::OpenSsl>(decoded->claims)) {
    throw TrustStoreError("trust list entry " + to_hex(*bad) + " does not have its key's kid");
  }
  return std::unique_ptr<TrustStore>(
      new TrustStore(std::move(decoded->claims), Bytes(signed_list.begin(), signed_list.end())));
}

std::unique_ptr<TrustStore> TrustStore::from_key_folder(const fs::path& dir, std::uint64_t now, std::uint64_t sequence,
                                                        unsigned validity_days) {
  try {
    const auto root_cert = crypto::Certificate::load(dir / "province-root.cert.pem");
    const auto province = region_code(root_cert.subject().locality, "province-root.cert.pem L");
    const std::uint64_t not_after = now + std::uint64_t{validity_days} * 86400;

    schemas::TrustListClaims claims;
    claims.sequence = sequence;
    claims.issued_at = now;
    claims.next_update = now + 90 * 86400;
    auto add = [&](const crypto::EcPublicKey& key, TrustRole role, std::uint32_t region) {
      schemas::TrustEntry entry{key.spki_der(), role, region, now, not_after};
      claims.entries.emplace(crypto::kid_of<crypto::OpenSsl>(key), std::move(entry));
    };

    std::vector<fs::path> voucher_files;
    for (const auto& item : fs::directory_iterator(dir)) {
      const auto name = item.path().filename().string();
      if (name.rfind("voucher-signer-", 0) == 0 && name.size() > 23 &&
          name.compare(name.size() - 8, 8, ".pub.pem") == 0) {
        voucher_files.push_back(item.path());
      }
    }
    std::sort(voucher_files.begin(), voucher_files.end());
    if (voucher_files.empty()) throw TrustStoreError("no voucher-signer-<bureau>.pub.pem in " + dir.string());
    for (const auto& file : voucher_files) {
      const auto name = file.filename().string();
      const auto bureau = name.substr(15, name.size() - 15 - 8);
      add(crypto::load_public_key(file).public_key(), TrustRole::Voucher, region_code(bureau, name));
    }
    const std::pair<const char*, TrustRole> others[] = {
        {"card-ca.pub.pem", TrustRole::CardCa},
        {"portfolio-signer.pub.pem", TrustRole::Portfolio},
        {"audit-signer.pub.pem", TrustRole::Audit},
    };
    for (const auto& [file, role] : others) {
      if (fs::exists(dir / file)) add(crypto::load_public_key(dir / file).public_key(), role, province);
    }
    if (fs::exists(dir / "terminal-ca.cert.pem")) {
      add(crypto::Certificate::load(dir / "terminal-ca.cert.pem").public_key(), TrustRole::TerminalCa, province);
    }

    const auto root = crypto::KeyFileSigner::load(dir / "province-root.key.pem");
    if (root->public_key() != root_cert.public_key()) {
      throw TrustStoreError("province-root.key.pem does not match province-root.cert.pem");
    }
    auto signed_list = schemas::sign_trust_list(claims, root->kid(), [&](ByteView tbs) { return root->sign(tbs); });
    return std::unique_ptr<TrustStore>(new TrustStore(std::move(claims), std::move(signed_list)));
  } catch (const TrustStoreError&) {
    throw;
  } catch (const std::exception& e) {
    throw TrustStoreError("key folder " + dir.string() + ": " + e.what());
  }
}

std::unique_ptr<TrustStore> TrustStore::load(const fs::path& dir, std::uint64_t now) {
  const auto ceremony = dir / kCeremonyFile;
  if (!fs::exists(ceremony)) return from_key_folder(dir, now);
  try {
    std::ifstream in(ceremony, std::ios::binary);
    if (!in) throw TrustStoreError("cannot be read");
    const Bytes list{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return from_signed_list(list, crypto::Certificate::load(dir / "province-root.cert.pem").public_key());
  } catch (const TrustStoreError& e) {
    throw TrustStoreError(ceremony.string() + ": " + e.what());
  } catch (const std::exception& e) {
    throw TrustStoreError("key folder " + dir.string() + ": " + e.what());
  }
}

std::optional<TrustStore::Key> TrustStore::find(const crypto::Kid& kid, TrustRole role,
                                                std::optional<std::uint32_t> region, std::uint64_t at) const {
  const auto it = claims_.entries.find(kid);
  if (it == claims_.entries.end()) return std::nullopt;
  const auto& entry = it->second;
  if (entry.role != role) return std::nullopt;
  if (region && entry.region != *region) return std::nullopt;
  if (at < entry.not_before || at > entry.not_after) return std::nullopt;
  auto key = cache_.find(kid);
  if (!key) {
    const auto point = point_of(entry.spki);
    if (!point) return std::nullopt;
    key = cache_.get(*point);
  }
  return Key{std::move(key), &entry};
}

}  // namespace skillcard::service
