#include "skillcard/ledger/export.hpp"

#include <cstdio>
#include <map>

namespace skillcard::ledger {

std::string csv_text(std::string_view s) {
  std::string v(s);
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r'))
    v.insert(v.begin(), '\'');
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

namespace {

// A JSON string: the provincial systems' parsers refuse invalid UTF-8, so a byte that is not part
// of a well-formed sequence (an operator's reason typed in another encoding) becomes U+FFFD.
std::string json_text(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const auto n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

unsigned fund_number(FundSource f) { return static_cast<unsigned>(f); }

void redemption_json(std::ostream& out, const RedemptionExportRow& row) {
  const auto& r = row.redemption;
  out << "{\"seq\":" << r.seq << ",\"voucher_id\":" << json_text(lower_hex(r.voucher))
      << ",\"card\":" << json_text(r.card) << ",\"counter\":" << r.counter
      << ",\"programme\":" << static_cast<unsigned>(row.programme)
      << ",\"occupation\":" << json_text(schemas::format_occupation(row.occupation))
      << ",\"level\":" << static_cast<unsigned>(row.level) << ",\"face_value_fen\":" << row.face_value_fen
      << ",\"issuer\":" << row.issuer << ",\"classroom_hours\":" << r.classroom_hours
      << ",\"online_hours\":" << r.online_hours << ",\"terminal_time\":" << r.terminal_time
      << ",\"server_time\":" << r.server_time << ",\"terminal\":" << json_text(r.actor.terminal)
      << ",\"clerk\":" << json_text(r.actor.clerk) << ",\"reversed_at\":";
  if (r.reversed_at) {
    out << *r.reversed_at;
  } else {
    out << "null";
  }
  out << ",\"reversal_reason\":" << json_text(r.reversal_reason) << "}";
}

}  // namespace

void write_redemptions_csv(std::ostream& out, std::span<const RedemptionExportRow> rows) {
  out << "provider,fund,seq,voucher_id,card,counter,programme,occupation,level,face_value_fen,issuer,"
         "classroom_hours,online_hours,terminal_time,server_time,terminal,clerk,reversed_at,reversal_reason\r\n";
  for (const auto& row : rows) {
    const auto& r = row.redemption;
    out << r.site << ',' << fund_number(row.fund) << ',' << r.seq << ',' << lower_hex(r.voucher) << ','
        << csv_text(r.card) << ',' << r.counter << ',' << static_cast<unsigned>(row.programme) << ','
        << schemas::format_occupation(row.occupation) << ',' << static_cast<unsigned>(row.level) << ','
        << row.face_value_fen << ',' << row.issuer << ',' << r.classroom_hours << ',' << r.online_hours << ','
        << r.terminal_time << ',' << r.server_time << ',' << csv_text(r.actor.terminal) << ','
        << csv_text(r.actor.clerk) << ',';
    if (r.reversed_at) out << *r.reversed_at;
    out << ',' << csv_text(r.reversal_reason) << "\r\n";
  }
}

void write_redemptions_json(std::ostream& out, std::span<const RedemptionExportRow> rows, UtcSeconds generated_at) {
  // Group by (provider, fund) in the order given (list_redemptions sorts by provider, fund, seq).
  std::map<std::pair<std::uint32_t, unsigned>, std::vector<const RedemptionExportRow*>> groups;
  for (const auto& row : rows) groups[{row.redemption.site, fund_number(row.fund)}].push_back(&row);
  out << "{\"format\":\"skillcard-ledger-redemptions/1\",\"generated_at\":" << generated_at << ",\"groups\":[";
  bool first_group = true;
  for (const auto& [key, members] : groups) {
    std::uint64_t count = 0;
    std::int64_t total = 0;
    for (const auto* m : members) {
      if (m->redemption.reversed_at) continue;
      ++count;
      total += m->face_value_fen;
    }
    out << (first_group ? "" : ",") << "{\"provider\":" << key.first << ",\"fund\":" << key.second
        << ",\"count\":" << count << ",\"total_fen\":" << total << ",\"redemptions\":[";
    first_group = false;
    bool first = true;
    for (const auto* m : members) {
      if (!first) out << ',';
      first = false;
      redemption_json(out, *m);
    }
    out << "]}";
  }
  out << "]}\n";
}

void write_settlement_csv(std::ostream& out, std::span<const SettlementLine> lines) {
  out << "provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n";
  for (const auto& l : lines) {
    out << l.provider << ',' << fund_number(l.fund) << ',' << l.count << ',' << l.total_fen << ',' << l.recovered_count
        << ',' << l.recovered_fen << ',' << l.net_fen() << "\r\n";
  }
}

void write_settlement_json(std::ostream& out, std::span<const SettlementLine> lines, UtcSeconds generated_at) {
  out << "{\"format\":\"skillcard-ledger-settlement/2\",\"generated_at\":" << generated_at << ",\"lines\":[";
  bool first = true;
  for (const auto& l : lines) {
    out << (first ? "" : ",") << "{\"provider\":" << l.provider << ",\"fund\":" << fund_number(l.fund)
        << ",\"count\":" << l.count << ",\"total_fen\":" << l.total_fen << ",\"recovered_count\":" << l.recovered_count
        << ",\"recovered_fen\":" << l.recovered_fen << ",\"net_fen\":" << l.net_fen() << "}";
    first = false;
  }
  out << "]}\n";
}

}  // namespace skillcard::ledger
