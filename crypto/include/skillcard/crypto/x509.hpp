// X.509 certificates for the province root, the terminal CA, terminal client certificates
// (mTLS) and the service's server certificate. Terminal certificates carry the terminal's role
// and region/site in their subject (docs/design.md, "Terminal certificates").
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "skillcard/crypto/openssl.hpp"

struct x509_st;

namespace skillcard::crypto {

struct DistinguishedName {
  std::string common_name;          // CN: terminal id, or the CA's name
  std::string organisation;         // O
  std::string organisational_unit;  // OU: terminal role (counter, site, kiosk, operator)
  std::string locality;             // L: 6-digit region code (GB/T 2260)
  std::string serial_number;        // serialNumber: site id, for site terminals
  bool operator==(const DistinguishedName&) const = default;
};

enum class CertificateUsage {
  Ca,         // basicConstraints CA:TRUE, keyCertSign + cRLSign
  TlsClient,  // a terminal: digitalSignature, extendedKeyUsage clientAuth
  TlsServer,  // the service: digitalSignature, extendedKeyUsage serverAuth
};

struct CertificateSpec {
  DistinguishedName subject;
  CertificateUsage usage = CertificateUsage::TlsClient;
  std::chrono::system_clock::time_point not_before = std::chrono::system_clock::now();
  std::chrono::days validity{365};
  std::optional<int> path_length;         // for CAs
  std::vector<std::string> dns_names;     // subjectAltName DNS entries (servers)
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries (servers)
};

class Certificate {
 public:
  struct Free {
    void operator()(x509_st* cert) const noexcept;
  };
  using Ptr = std::unique_ptr<x509_st, Free>;

  static Certificate from_pem(std::string_view pem);           // throws CryptoError naming the problem
  static Certificate load(const std::filesystem::path& path);  // KeyFileError for file problems
  std::string to_pem() const;

  DistinguishedName subject() const;  // std::invalid_argument for an attribute named twice
  DistinguishedName issuer() const;
  EcPublicKey public_key() const;
  bool is_ca() const;
  std::chrono::system_clock::time_point not_before() const;
  std::chrono::system_clock::time_point not_after() const;
  // True if `issuer_key` made this certificate's signature.
  bool signed_by(const EcPublicKey& issuer_key) const;
  x509_st* native() const noexcept { return cert_.get(); }

  // Issues a certificate for `subject_key`, signed by `issuer_key`. With no issuer certificate
  // the certificate is self-signed (the province root).
  static Certificate issue(const CertificateSpec& spec, const EcPublicKey& subject_key,
                           const OpenSsl::PrivateKey& issuer_key, const Certificate* issuer);

 private:
  explicit Certificate(Ptr cert) : cert_(std::move(cert)) {}
  Ptr cert_;
};

}  // namespace skillcard::crypto
