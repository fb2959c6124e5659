// skillcard-formats: builds every skillcard structure from the example values (tools/formats/
// examples.hpp), signs it with a fixed example key (deterministic ECDSA, so the bytes never
// change), checks that it decodes back to the same claims and verifies, and prints it: size,
// payload size, hex, and CBOR diagnostic notation of the payload and of the COSE_Sign1.
//
//   skillcard-formats [--markdown | --json] [--list] [NAME...]
//
// --markdown prints the example sections of docs/formats.md (and, for "sizes", its size table);
// --json prints one JSON object per structure. NAMEs pick structures (default: all).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "examples.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
namespace ex = skillcard::examples;

namespace {

using KeyNames = std::map<std::int64_t, std::string>;

struct Example {
  std::string name;         // command-line name
  std::string title;        // human title
  std::string description;  // one sentence for the docs
  Bytes encoded;            // what goes on the wire
  std::optional<CoseSign1> envelope;
  std::string signer;  // example key label, empty for unsigned structures
  crypto::Kid kid{};
  std::size_t limit = 0;
  const KeyNames* names = nullptr;
  bool documented = true;  // has its own example section in docs/formats.md (else sizes only)

  std::size_t payload_size() const { return envelope ? envelope->payload().size() : encoded.size(); }
  ByteView payload() const { return envelope ? envelope->payload() : ByteView(encoded); }
};

// --- key names for the comments in diagnostic notation --------------------------------------

const KeyNames kVoucherNames = {
    {-1, "format version"},      {1, "iss: issuing bureau"}, {7, "cti: voucher id"},       {2, "sub: holder ref"},
    {-2, "programme type"},      {-3, "occupation code"},    {-4, "skill level"},          {-5, "fund source"},
    {-6, "face value, fen"},     {-7, "planned hours"},      {-8, "planned online hours"}, {-9, "eligible regions"},
    {-10, "eligible providers"}, {6, "iat: issued at"},      {5, "nbf: not before"},       {4, "exp: expiry"},
};
const KeyNames kReceiptNames = {
    {-1, "format version"},           {7, "voucher id"},      {-20, "site id"},         {-21, "nonce"},
    {-22, "card redemption counter"}, {-23, "terminal time"}, {-24, "classroom hours"}, {-25, "online hours"},
};
const KeyNames kCardCertificateNames = {
    {-1, "format version"},   {-30, "card number"},   {-31, "region"},       {-32, "receipt public key"},
    {-33, "auth public key"}, {5, "nbf: not before"}, {4, "exp: not after"},
};
const KeyNames kRecordNames = {
    {-1, "format version"},
    {-50, "kind"},
    {-3, "occupation code"},
    {-4, "skill level"},
    {-51, "issuer"},
    {-52, "certificate number"},
    {-53, "date, days since 1970-01-01"},
    {-54, "salt"},
};
const KeyNames kDigestNames = {
    {-1, "format version"},  {2, "sub: holder ref"}, {-40, "digest count"}, {-41, "digests (SHA-256 of each record)"},
    {-42, "digest version"}, {6, "iat: issued at"},  {4, "exp: expiry"},
};
const KeyNames kTrustListNames = {
    {-1, "format version"}, {-60, "sequence number"},       {6, "issued at"},
    {-61, "next update"},   {-62, "entries: kid => entry"}, {-63, "public key (SPKI DER)"},
    {-64, "role"},          {-65, "region or bureau"},      {5, "not before"},
    {4, "not after"},
};

// --- pretty diagnostic notation ------------------------------------------------------------
// to_diagnostic() prints one line; for people we break long maps and arrays over lines and
// name each key in a comment (/ ... / is a comment in diagnostic notation, RFC 8610 G.6).

struct Node {
  enum Kind { Atom, Array, Map } kind = Atom;
  std::string atom;
  std::vector<Node> items;  // maps: key, value, key, value, ...
};

class DiagParser {
 public:
  explicit DiagParser(std::string_view s) : s_(s) {}
  Node parse() {
    Node n = value();
    if (pos_ != s_.size()) throw std::logic_error("diagnostic parser: trailing text");
    return n;
  }

 private:
  Node value() {
    if (peek() == '[' || peek() == '{') {
      const char close = peek() == '[' ? ']' : '}';
      Node n;
      n.kind = peek() == '[' ? Node::Array : Node::Map;
      ++pos_;
      while (peek() != close) {
        n.items.push_back(value());
        if (n.kind == Node::Map) {
          expect(": ");
          n.items.push_back(value());
        }
        if (peek() == ',') expect(", ");
      }
      ++pos_;
      return n;
    }
    Node n;
    const std::size_t start = pos_;
    if (peek() == '"') {
      ++pos_;
      while (s_.at(pos_) != '"') pos_ += s_[pos_] == '\\' ? std::size_t{2} : std::size_t{1};
      ++pos_;
    } else if (s_.compare(pos_, 2, "h'") == 0) {
      pos_ = s_.find('\'', pos_ + 2) + 1;
    } else {
      while (pos_ < s_.size() && std::string_view(",:]}").find(s_[pos_]) == std::string_view::npos) ++pos_;
    }
    n.atom = std::string(s_.substr(start, pos_ - start));
    return n;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(std::string_view t) {
    if (s_.compare(pos_, t.size(), t) != 0)
      throw std::logic_error("diagnostic parser: expected '" + std::string(t) + "'");
    pos_ += t.size();
  }
  std::string_view s_;
  std::size_t pos_ = 0;
};

std::string flat(const Node& n) {
  if (n.kind == Node::Atom) return n.atom;
  std::string out(1, n.kind == Node::Array ? '[' : '{');
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    if (i) out += n.kind == Node::Map && i % 2 == 1 ? ": " : ", ";
    out += flat(n.items[i]);
  }
  out += n.kind == Node::Array ? ']' : '}';
  return out;
}

constexpr std::size_t kWidth = 72;
constexpr std::size_t kCommentColumn = 56;  // comments of longer lines follow after one space

// Columns a line takes in a monospaced font: UTF-8 continuation bytes take none, CJK characters
// (3-byte sequences from U+2E80 on) take two.
std::size_t display_width(std::string_view s) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;
    const bool wide =
        c >= 0xE2 && c <= 0xEF && i + 1 < s.size() && (c > 0xE2 || static_cast<unsigned char>(s[i + 1]) >= 0xBA);
    width += wide ? std::size_t{2} : std::size_t{1};
  }
  return width;
}

// A byte string too long for one line, broken into 32-byte groups (diagnostic notation allows
// whitespace inside h'...', RFC 8610 G.2).
std::string wrap_bytes(const std::string& atom, std::size_t indent) {
  const std::string hex = atom.substr(2, atom.size() - 3);
  std::string out = "h'";
  for (std::size_t i = 0; i < hex.size(); i += 64) {
    if (i) out += "\n" + std::string(indent + 4, ' ');
    out += hex.substr(i, 64);
  }
  return out + "'";
}

void render(const Node& n, std::size_t indent, const KeyNames* names, bool top, std::string& out) {
  const std::string one_line = flat(n);
  if (n.kind == Node::Atom && one_line.rfind("h'", 0) == 0 && one_line.size() > 64 + 3) {
    out += wrap_bytes(one_line, indent);
    return;
  }
  if (n.kind == Node::Atom || (!top && indent + one_line.size() <= kWidth) || n.items.empty()) {
    out += one_line;
    return;
  }
  const std::string pad(indent + 2, ' ');
  out += n.kind == Node::Array ? "[\n" : "{\n";
  const std::size_t step = n.kind == Node::Map ? 2 : 1;
  // Lines first, then comments aligned after the longest single-line entry.
  std::vector<std::pair<std::string, std::string>> lines;
  for (std::size_t i = 0; i < n.items.size(); i += step) {
    std::string line = pad;
    std::string comment;
    if (n.kind == Node::Map) {
      line += n.items[i].atom + ": ";
      render(n.items[i + 1], indent + 2, names, false, line);
      if (names && n.items[i].kind == Node::Atom) {
        try {
          const auto it = names->find(std::stoll(n.items[i].atom));
          if (it != names->end()) comment = it->second;
        } catch (const std::exception&) {  // a byte-string key (trust list kid): no name
        }
      }
    } else {
      render(n.items[i], indent + 2, names, false, line);
    }
    if (i + step < n.items.size()) line += ",";
    lines.emplace_back(line, comment);
  }
  const auto last_line_width = [](const std::string& line) {
    const auto last = line.rfind('\n');
    return display_width(last == std::string::npos ? std::string_view(line) : std::string_view(line).substr(last + 1));
  };
  std::size_t column = 0;
  for (const auto& [line, comment] : lines) {
    const auto width = last_line_width(line);
    if (!comment.empty() && width <= kCommentColumn) column = std::max(column, width);
  }
  for (const auto& [line, comment] : lines) {
    out += line;
    if (!comment.empty()) {
      const auto width = last_line_width(line);
      out += std::string(column > width ? column - width + 1 : 1, ' ') + "/ " + comment + " /";
    }
    out += "\n";
  }
  out += std::string(indent, ' ') + (n.kind == Node::Array ? "]" : "}");
}

std::string pretty(ByteView cbor, const KeyNames* names) {
  std::string out;
  render(DiagParser(to_diagnostic(cbor)).parse(), 0, names, true, out);
  return out;
}

std::string hex_lines(ByteView bytes, std::size_t per_line = 32) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += per_line) {
    out += to_hex(bytes.subspan(i, std::min(per_line, bytes.size() - i)));
    out += '\n';
  }
  return out;
}

std::string envelope_size_text(const Example& e) { return std::to_string(e.encoded.size() - e.payload_size()); }

// The COSE_Sign1 with each element on its own line: the protected header as embedded CBOR
// (<< >>, RFC 8610 G.3), the payload and signature as bytes.
std::string pretty_envelope(const Example& e) {
  const auto& env = *e.envelope;
  const std::string protected_diag = to_diagnostic(env.protected_bytes());
  std::vector<std::pair<std::string, std::string>> lines = {
      {"<<" + protected_diag + ">>,", "protected header (" + std::to_string(env.protected_bytes().size()) +
                                          " bytes): alg ES256, " +
                                          (env.content_type() ? std::string("content type, ") : std::string()) + "kid"},
      {"{},", "unprotected header: empty"},
      {wrap_bytes("h'" + to_hex(env.payload()) + "'", 0) + ",",
       "payload: the map above (" + std::to_string(env.payload().size()) + " bytes)"},
      {wrap_bytes("h'" + to_hex(env.signature()) + "'", 0), "signature: ES256 r || s (64 bytes)"},
  };
  std::string out = std::to_string(env.tag().value_or(0)) + "([\n";
  for (const auto& [text, comment] : lines) out += "  / " + comment + " /\n  " + text + "\n";
  return out + "])";
}

// --- building and checking the examples ------------------------------------------------------

template <class Decoded, class Claims>
void require_round_trip(const Example& e, const Decoded& decoded, const Claims& claims, const ex::ExampleKey& key) {
  if (!(decoded.claims == claims)) throw std::logic_error(e.name + ": decoded claims differ from the example");
  if (decoded.kid != key.kid) throw std::logic_error(e.name + ": kid differs");
  const auto verdict = decoded.envelope.verify(key.verifier());
  if (!verdict.ok()) throw std::logic_error(e.name + ": does not verify: " + verdict.reason);
}

template <class Claims, class Sign, class Decode>
Example signed_example(std::string name, std::string title, std::string description, const Claims& claims,
                       const ex::ExampleKey& key, std::size_t limit, const KeyNames& names, Sign sign, Decode decode,
                       bool documented = true) {
  Example e;
  e.name = std::move(name);
  e.title = std::move(title);
  e.description = std::move(description);
  e.encoded = sign(claims, key.kid, key.signer());
  e.envelope = CoseSign1::decode(e.encoded);
  e.signer = key.name;
  e.kid = key.kid;
  e.limit = limit;
  e.names = &names;
  e.documented = documented;
  require_round_trip(e, decode(e.encoded), claims, key);
  if (e.encoded != sign(claims, key.kid, key.signer()))
    throw std::logic_error(e.name + ": signing is not deterministic");
  return e;
}

Example record_example(std::string name, std::string title, std::string description, const CertificateRecord& r,
                       bool documented) {
  Example e;
  e.name = std::move(name);
  e.title = std::move(title);
  e.description = std::move(description);
  e.encoded = encode(r);
  e.limit = kMaxCertificateRecord;
  e.names = &kRecordNames;
  e.documented = documented;
  if (!(decode_certificate_record(e.encoded) == r)) throw std::logic_error(e.name + ": does not round-trip");
  return e;
}

std::vector<Example> build_examples(const ex::Keys& k) {
  std::vector<Example> out;
  out.push_back(signed_example(
      "voucher", "Voucher token",
      "Voucher 1 of bureau 420100 for key-group employment-skills training, occupation 4-04-05-05 "
      "level 4, ¥1 800 from the employment subsidy fund, 120 hours of which 36 online, usable in "
      "region 420100 or at provider 10001, valid 92 days",
      ex::voucher(), k.voucher_signer, kMaxVoucherToken, kVoucherNames, sign_voucher, decode_voucher_token));
  out.push_back(signed_example("voucher-worst", "Voucher token, worst case",
                               "4 eligible codes of 5 bytes each, 4-byte occupation, face value and times, "
                               "65 535 hours",
                               ex::voucher_worst(), k.voucher_signer, kMaxVoucherToken, kVoucherNames, sign_voucher,
                               decode_voucher_token, false));
  out.push_back(signed_example("receipt", "Receipt",
                               "The card's receipt for redeeming voucher 1 at site 10001 with a server nonce, "
                               "card redemption counter 1, 84 classroom and 36 online hours",
                               ex::receipt(), k.card_receipt, kMaxReceipt, kReceiptNames, sign_receipt,
                               decode_receipt));
  out.push_back(signed_example("receipt-worst", "Receipt, worst case",
                               "uint32 site id, counter and terminal time, 65 535 hours each", ex::receipt_worst(),
                               k.card_receipt, kMaxReceipt, kReceiptNames, sign_receipt, decode_receipt, false));
  out.push_back(signed_example("card-certificate", "Card certificate",
                               "Card 4201000001 of region 420100 with its RECEIPT and AUTH keys, valid 10 years",
                               ex::card_certificate(k), k.card_ca, kMaxCardCertificate, kCardCertificateNames,
                               sign_card_certificate, decode_card_certificate));
  out.push_back(record_example("certificate-record", "Certificate record",
                               "A skill-level certificate (kind 3) for occupation 4-04-05-05 level 4 issued by "
                               "武汉市职业技能鉴定中心 on 2026-11-28 (day 20785), with a 16-byte salt",
                               ex::record(), true));
  out.push_back(record_example("certificate-record-worst", "Certificate record, worst case",
                               "128-byte issuer and number, 32-byte salt, 4-byte date", ex::record_worst(), false));
  out.push_back(signed_example("portfolio-digest", "Portfolio digest",
                               "Digest version 3 over the holder's 3 certificate records (the example record above "
                               "and two more), valid 3 years",
                               ex::portfolio_digest(), k.portfolio_signer, kMaxPortfolioDigest, kDigestNames,
                               sign_portfolio_digest, decode_portfolio_digest));
  out.push_back(signed_example("portfolio-digest-worst", "Portfolio digest, worst case",
                               "11 digests, uint32 digest version and times", ex::portfolio_digest_worst(),
                               k.portfolio_signer, kMaxPortfolioDigest, kDigestNames, sign_portfolio_digest,
                               decode_portfolio_digest, false));
  out.push_back(signed_example("trust-list", "Trust list",
                               "Sequence 7 with two entries: the voucher signer of bureau 420100 (role 1) and the "
                               "province's card CA (role 2), next update 90 days after issue",
                               ex::trust_list(k), k.root, kMaxTrustList, kTrustListNames, sign_trust_list,
                               decode_trust_list));
  out.push_back(signed_example("trust-list-10", "Trust list, 10 entries",
                               "6 bureau voucher signers, card CA, portfolio, audit and terminal CA signers",
                               ex::trust_list_of(10), k.root, kMaxTrustList, kTrustListNames, sign_trust_list,
                               decode_trust_list, false));
  out.push_back(signed_example("trust-list-256", "Trust list, 256 entries",
                               "252 voucher signers and the 4 province signers", ex::trust_list_of(kMaxTrustEntries),
                               k.root, kMaxTrustList, kTrustListNames, sign_trust_list, decode_trust_list, false));
  return out;
}

// --- output --------------------------------------------------------------------------------

std::string size_line(const Example& e) {
  std::string s = std::to_string(e.encoded.size()) + " bytes";
  if (e.envelope) s += " (payload " + std::to_string(e.payload_size()) + " + envelope " + envelope_size_text(e) + ")";
  return s + ", limit " + std::to_string(e.limit);
}

void print_plain(const Example& e) {
  std::cout << "== " << e.name << ": " << e.title << "\n"
            << e.description << "\n"
            << "size: " << size_line(e) << "\n";
  if (e.envelope) std::cout << "signer: example key " << e.signer << ", kid " << to_hex(e.kid) << "\n";
  std::cout << "hex:\n"
            << hex_lines(e.encoded) << "payload, diagnostic notation:\n"
            << pretty(e.payload(), e.names) << "\n";
  if (e.envelope) {
    std::cout << "COSE_Sign1, diagnostic notation:\n" << to_diagnostic(e.encoded) << "\n";
  }
  std::cout << "\n";
}

void print_markdown(const Example& e) {
  std::cout << "<!-- generated: skillcard-formats --markdown " << e.name << " -->\n"
            << "**Example.** " << e.description << ". **" << e.encoded.size() << " bytes**";
  if (e.envelope) {
    std::cout << ": payload " << e.payload_size() << " + envelope " << envelope_size_text(e) << " (limit " << e.limit
              << "). Signed by the example key `" << e.signer << "`, kid `" << to_hex(e.kid) << "`";
  } else {
    std::cout << " (limit " << e.limit << ")";
  }
  std::cout << ".\n\nHex (" << e.encoded.size() << " bytes, 32 per line):\n\n```text\n"
            << hex_lines(e.encoded) << "```\n\n"
            << (e.envelope ? "Payload" : "The record") << " in diagnostic notation:\n\n```cbor-diag\n"
            << pretty(e.payload(), e.names) << "\n```\n";
  if (e.envelope) {
    std::cout << "\nThe COSE_Sign1 in diagnostic notation (protected header as embedded CBOR):\n\n```cbor-diag\n"
              << pretty_envelope(e) << "\n```\n";
  }
  std::cout << "<!-- end generated -->\n";
}

void print_size_table(const std::vector<Example>& all) {
  std::cout << "<!-- generated: skillcard-formats --markdown sizes -->\n"
            << "| Structure | Size | Payload | Envelope | Limit |\n|---|---|---|---|---|\n";
  for (const auto& e : all) {
    std::cout << "| " << e.title << " (`" << e.name << "`) | **" << e.encoded.size() << "** | " << e.payload_size()
              << " | " << (e.envelope ? envelope_size_text(e) : std::string("—")) << " | " << e.limit << " |\n";
  }
  std::cout << "<!-- end generated -->\n";
}

void print_keys(const ex::Keys& k) {
  std::cout << "<!-- generated: skillcard-formats --markdown keys -->\n"
            << "| Example key | kid | public key (SEC1 compressed) |\n|---|---|---|\n";
  for (const auto* key : {&k.root, &k.voucher_signer, &k.card_ca, &k.portfolio_signer, &k.card_receipt, &k.card_auth}) {
    std::cout << "| `" << key->name << "` | `" << to_hex(key->kid) << "` | `" << to_hex(key->public_key.compressed())
              << "` |\n";
  }
  std::cout << "<!-- end generated -->\n";
}

nlohmann::ordered_json to_json(const Example& e) {
  nlohmann::ordered_json j;
  j["name"] = e.name;
  j["title"] = e.title;
  j["size"] = e.encoded.size();
  j["payload_size"] = e.payload_size();
  j["limit"] = e.limit;
  j["hex"] = to_hex(e.encoded);
  j["payload_diagnostic"] = to_diagnostic(e.payload());
  j["diagnostic"] = to_diagnostic(e.encoded);
  if (e.envelope) {
    j["signer"] = e.signer;
    j["kid"] = to_hex(e.kid);
  }
  return j;
}

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--markdown | --json] [--list] [NAME...]\n"
               "  prints every skillcard structure built from the example values of docs/formats.md\n"
               "  --markdown  the example sections of docs/formats.md (NAME 'sizes': the size table,\n"
               "              'keys': the example keys)\n"
               "  --json      one JSON object per structure\n"
               "  --list      the structure names\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  enum class Mode { Plain, Markdown, Json } mode = Mode::Plain;
  bool list = false;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--markdown") {
      mode = Mode::Markdown;
    } else if (arg == "--json") {
      mode = Mode::Json;
    } else if (arg == "--list") {
      list = true;
    } else if (arg == "-h" || arg == "--help") {
      usage(argv[0]);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage(argv[0]);
    } else {
      names.push_back(arg);
    }
  }
  try {
    const ex::Keys keys;
    const auto all = build_examples(keys);
    if (list) {
      for (const auto& e : all) std::cout << e.name << "\n";
      std::cout << "sizes\nkeys\n";
      return 0;
    }
    for (const auto& n : names) {
      const bool known = n == "sizes" || n == "keys" ||
                         std::any_of(all.begin(), all.end(), [&](const Example& e) { return e.name == n; });
      if (!known) {
        std::cerr << "skillcard-formats: unknown structure '" << n << "' (see --list)\n";
        return 2;
      }
    }
    const auto wanted = [&](const std::string& n) {
      return names.empty() || std::find(names.begin(), names.end(), n) != names.end();
    };
    for (const auto& e : all) {
      if (!wanted(e.name)) continue;
      switch (mode) {
        case Mode::Plain:
          print_plain(e);
          break;
        case Mode::Markdown:
          if (e.documented || !names.empty()) {
            print_markdown(e);
            std::cout << "\n";
          }
          break;
        case Mode::Json:
          std::cout << to_json(e).dump() << "\n";
          break;
      }
    }
    if (mode == Mode::Markdown && wanted("keys")) {
      print_keys(keys);
      std::cout << "\n";
    }
    if (mode == Mode::Markdown && wanted("sizes")) print_size_table(all);
    if (mode == Mode::Plain && names.empty()) {
      std::cout << "== sizes\n";
      for (const auto& e : all) std::cout << e.name << ": " << size_line(e) << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "skillcard-formats: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
