// Fuzz target for what a terminal parses from the network: the service's answers, read by the
// JSON service client (host/) for every call. A canned transport answers with the input: the
// first byte picks the call, the second the HTTP status, the rest is the body. The client may
// only answer, or throw ServiceRefusal (a refusal body) or ServiceUnavailable (anything that is
// not the contract); any other exception escaping, or a crash, is a finding.
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "skillcard/host/json_service_client.hpp"

using namespace skillcard;
using namespace skillcard::host;

namespace {

class CannedTransport final : public HttpTransport {
 public:
  HttpResponse answer;
  HttpResponse send(const HttpRequest&) override { return answer; }
};

constexpr std::array<int, 12> kStatuses{200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 500, 503};

void call(ServiceClient& client, std::uint8_t which) {
  const VoucherId id{1, 2, 3, 4, 5, 6, 7, 8};
  const HolderRef holder{};
  CardProof proof;
  ReceiptSubmission receipt{id, Bytes(140, 0x5A), std::string("4201000001")};
  switch (which % 16) {
    case 0:
      (void)client.create_nonce();
      break;
    case 1:
      (void)client.register_card(Bytes(194, 0x01), "420102199001011234");
      break;
    case 2:
      (void)client.get_card("4201000001");
      break;
    case 3:
      (void)client.check_holder("420102199001011234", proof);
      break;
    case 4:
      (void)client.issue_voucher(IssueRequest{});
      break;
    case 5:
      (void)client.mark_written(id);
      break;
    case 6:
      (void)client.void_voucher(id, "test");
      break;
    case 7:
      (void)client.verify_token(Bytes(176, 0x02));
      break;
    case 8:
      (void)client.submit_redemption(receipt);
      break;
    case 9:
      (void)client.sync_redemptions(std::span<const ReceiptSubmission>(&receipt, 1));
      break;
    case 10:
      (void)client.record_certificate(CertificateRequest{});
      break;
    case 11:
      (void)client.report_lost(LostRequest{"4201000001", "420102199001011234", std::nullopt});
      break;
    case 12:
      (void)client.holder_vouchers(holder, proof);
      break;
    case 13:
      (void)client.holder_portfolio(holder, proof);
      break;
    case 14:
      (void)client.trust_list();
      break;
    default:
      (void)client.revocations();
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  auto transport = std::make_shared<CannedTransport>();
  transport->answer.status = kStatuses[data[1] % kStatuses.size()];
  transport->answer.body.assign(reinterpret_cast<const char*>(data) + 2, size - 2);
  JsonServiceClient client(transport, "clerk-1");
  try {
    call(client, data[0]);
  } catch (const ServiceRefusal&) {
  } catch (const ServiceUnavailable&) {
  }
  return 0;
}
