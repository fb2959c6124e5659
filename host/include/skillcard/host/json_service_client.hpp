// ServiceClient over HTTP: the contract's JSON bodies both ways (nlohmann-json, private), the
// clerk header on every write, the card proof header on holder reads, refusal bodies turned
// into ServiceRefusal. make_https_service_client wires it to BeastHttpTransport.
#pragma once

#include <memory>
#include <string>

#include "skillcard/host/http_transport.hpp"
#include "skillcard/host/service_client.hpp"

namespace skillcard::host {

class JsonServiceClient final : public ServiceClient {
 public:
  // `clerk`: the operator id sent as Skillcard-Clerk on every write (empty for kiosks).
  JsonServiceClient(std::shared_ptr<HttpTransport> transport, std::string clerk);

  NonceGrant create_nonce() override;
  CardRecord register_card(ByteView certificate, std::string_view citizen_id) override;
  CardRecord get_card(std::string_view number) override;
  CardRecord check_holder(std::string_view citizen_id, const CardProof& proof) override;
  IssuedVoucher issue_voucher(const IssueRequest& request) override;
  VoucherStateAnswer mark_written(const VoucherId& id) override;
  VoucherStateAnswer void_voucher(const VoucherId& id, std::string_view reason) override;
  VerifiedToken verify_token(ByteView token) override;
  RedemptionAnswer submit_redemption(const ReceiptSubmission& submission) override;
  std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) override;
  RecordedCertificate record_certificate(const CertificateRequest& request) override;
  LostAnswer report_lost(const LostRequest& request) override;
  HolderVouchers holder_vouchers(const HolderRef& holder, const CardProof& proof) override;
  Portfolio holder_portfolio(const HolderRef& holder, const CardProof& proof) override;
  TrustListAnswer trust_list() override;
  Revocations revocations() override;

 private:
  HttpResponse call(const std::string& method, const std::string& target, const std::string& body, bool write,
                    const std::string& proof_header = {});
  std::shared_ptr<HttpTransport> transport_;
  std::string clerk_;
};

std::unique_ptr<ServiceClient> make_https_service_client(HttpsOptions options, std::string clerk);

}  // namespace skillcard::host
