// X.509 issuing and reading over OpenSSL's X509 API.
#include "skillcard/crypto/x509.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "openssl_check.hpp"
#include "skillcard/crypto/key_files.hpp"

namespace skillcard::crypto {

using detail::ossl_check;
using detail::ossl_check_ptr;
using detail::Owned;

namespace {

using Bio = Owned<BIO, BIO_free_all>;
using Name = Owned<X509_NAME, X509_NAME_free>;
using Ext = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using Bn = Owned<BIGNUM, BN_free>;

void add_entry(X509_NAME* name, int nid, const std::string& value) {
  if (value.empty()) return;
  ossl_check(X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                        static_cast<int>(value.size()), -1, 0),
             "X509_NAME_add_entry_by_NID");
}

std::string entry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  // One of each: a subject naming two roles (OU) or two regions would be read as whichever
  // came first.
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    throw std::invalid_argument(std::string("certificate subject names ") + OBJ_nid2sn(nid) + " more than once");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

DistinguishedName read_name(const X509_NAME* name) {
  return DistinguishedName{entry(name, NID_commonName), entry(name, NID_organizationName),
                           entry(name, NID_organizationalUnitName), entry(name, NID_localityName),
                           entry(name, NID_serialNumber)};
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  Ext ext(ossl_check_ptr(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()), "X509V3_EXT_conf_nid"));
  ossl_check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* t) {
  struct tm tm {};
  ossl_check(ASN1_TIME_to_tm(t, &tm), "ASN1_TIME_to_tm");
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

void Certificate::Free::operator()(x509_st* cert) const noexcept { X509_free(cert); }

Certificate Certificate::from_pem(std::string_view pem) {
  Bio bio(ossl_check_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf"));
  return Certificate(Ptr(ossl_check_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                        "PEM_read_bio_X509 (not a PEM certificate)")));
}

Certificate Certificate::load(const std::filesystem::path& path) {
  const auto content = read_key_file(path);
  try {
    return from_pem(content);
  } catch (const CryptoError& e) {
    throw KeyFileError(KeyFileError::Reason::Malformed, path, e.what());
  }
}

std::string Certificate::to_pem() const {
  Bio bio(ossl_check_ptr(BIO_new(BIO_s_mem()), "BIO_new"));
  ossl_check(PEM_write_bio_X509(bio.get(), cert_.get()), "PEM_write_bio_X509");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

DistinguishedName Certificate::subject() const { return read_name(X509_get_subject_name(cert_.get())); }
DistinguishedName Certificate::issuer() const { return read_name(X509_get_issuer_name(cert_.get())); }

EcPublicKey Certificate::public_key() const {
  EVP_PKEY* key = ossl_check_ptr(X509_get_pubkey(cert_.get()), "X509_get_pubkey");
  return OpenSsl::VerifyKey::adopt(OpenSsl::PkeyPtr(key)).public_key();
}

bool Certificate::is_ca() const { return X509_check_ca(cert_.get()) != 0; }

std::chrono::system_clock::time_point Certificate::not_before() const {
  return to_time_point(X509_get0_notBefore(cert_.get()));
}
std::chrono::system_clock::time_point Certificate::not_after() const {
  return to_time_point(X509_get0_notAfter(cert_.get()));
}

bool Certificate::signed_by(const EcPublicKey& issuer_key) const {
  const auto key = OpenSsl::VerifyKey::parse(issuer_key);
  const int rc = X509_verify(cert_.get(), key.native());
  ERR_clear_error();
  return rc == 1;
}

Certificate Certificate::issue(const CertificateSpec& spec, const EcPublicKey& subject_key,
                               const OpenSsl::PrivateKey& issuer_key, const Certificate* issuer) {
  Ptr cert(ossl_check_ptr(X509_new(), "X509_new"));
  ossl_check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");

  // 128-bit random positive serial (RFC 5280 §4.1.2.2 allows up to 20 octets).
  std::uint8_t serial_bytes[16];
  OpenSsl::random_bytes(serial_bytes);
  serial_bytes[0] &= 0x7F;
  Bn serial(ossl_check_ptr(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr), "BN_bin2bn"));
  ossl_check_ptr(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())), "BN_to_ASN1_INTEGER");

  const auto start = std::chrono::system_clock::to_time_t(spec.not_before);
  const auto end = start + std::chrono::duration_cast<std::chrono::seconds>(spec.validity).count();
  ossl_check_ptr(ASN1_TIME_set(X509_getm_notBefore(cert.get()), start), "ASN1_TIME_set(notBefore)");
  ossl_check_ptr(ASN1_TIME_set(X509_getm_notAfter(cert.get()), end), "ASN1_TIME_set(notAfter)");

  Name name(ossl_check_ptr(X509_NAME_new(), "X509_NAME_new"));
  add_entry(name.get(), NID_organizationName, spec.subject.organisation);
  add_entry(name.get(), NID_organizationalUnitName, spec.subject.organisational_unit);
  add_entry(name.get(), NID_localityName, spec.subject.locality);
  add_entry(name.get(), NID_serialNumber, spec.subject.serial_number);
  add_entry(name.get(), NID_commonName, spec.subject.common_name);
  ossl_check(X509_set_subject_name(cert.get(), name.get()), "X509_set_subject_name");
  ossl_check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer->native()) : name.get()),
             "X509_set_issuer_name");

  const auto subject_vkey = OpenSsl::VerifyKey::parse(subject_key);
  ossl_check(X509_set_pubkey(cert.get(), subject_vkey.native()), "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer->native() : cert.get(), cert.get(), nullptr, nullptr, 0);
  switch (spec.usage) {
    case CertificateUsage::Ca:
      add_extension(cert.get(), &ctx, NID_basic_constraints,
                    "critical,CA:TRUE" + (spec.path_length ? ",pathlen:" + std::to_string(*spec.path_length) : ""));
      add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case CertificateUsage::TlsClient:
      add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
      add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
      add_extension(cert.get(), &ctx, NID_ext_key_usage, "clientAuth");
      break;
    case CertificateUsage::TlsServer:
      add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
      add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
      add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
      break;
  }
  std::string san;
  for (const auto& dns : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) add_extension(cert.get(), &ctx, NID_subject_alt_name, san);
  add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (issuer) add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

  if (X509_sign(cert.get(), issuer_key.native(), EVP_sha256()) <= 0) {
    detail::throw_openssl("X509_sign", CallSite::current());
  }
  return Certificate(std::move(cert));
}

}  // namespace skillcard::crypto
