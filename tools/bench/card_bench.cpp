// Card OS benchmarks (JSON lines): simple APDUs through the in-process transport (goal
// >= 200 000 APDUs/s, absolute) against the bare encode/parse work of the same exchange, and
// journalled commits of 1 and 8 applet pages against raw page writes to the same kind of medium,
// in RAM and written through to an image file.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "bench_json.hpp"
#include "skillcard/card/card.hpp"
#include "skillcard/card/echo_applet.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/iso7816/response_apdu.hpp"

using namespace skillcard;
using namespace skillcard::card;

namespace {

constexpr double kApduGoal = 200000;
constexpr std::size_t kPages = 192;  // the training applet's image

Eeprom formatted_ram() {
  Eeprom e = Eeprom::in_memory(kPages);
  PersistentMemory::format(e);
  return e;
}

Eeprom formatted_file(const std::filesystem::path& path) {
  Eeprom e = Eeprom::create_file(path, kPages);
  PersistentMemory::format(e);
  return e;
}

// Commits of `pages` applet pages per transaction, counted in pages, against raw page writes.
bench::Comparison commits(Eeprom journalled, Eeprom raw, std::size_t pages, int rounds,
                          std::chrono::milliseconds per_round) {
  PersistentMemory memory(std::move(journalled));
  memory.mount();
  std::uint8_t value = 0;
  std::size_t slot = 0;
  const std::size_t slots = memory.size() / kPageSize / pages;
  auto commit = [&]() -> std::size_t {
    auto tx = memory.begin();
    tx.fill((slot++ % slots) * pages * kPageSize, pages * kPageSize, ++value);
    tx.commit();
    return pages;
  };
  Bytes page(kPageSize, 0);
  std::size_t next = 0;
  auto raw_write = [&]() -> std::size_t {
    page[0] = ++value;
    raw.write_page(kFirstAppletPage + next++ % (kPages - kFirstAppletPage), page);
    return 1;
  };
  return bench::compare(commit, raw_write, rounds, per_round);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick =
      bench::quick_only(argc, argv, "card_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it)");
  const int rounds = quick ? 3 : 7;
  const auto per_round = quick ? std::chrono::milliseconds(60) : std::chrono::milliseconds(200);

  // --- simple APDUs -----------------------------------------------------------------------------
  Card card(formatted_ram());
  card.install(std::make_unique<EchoApplet>(), 0, 4 * kPageSize);
  card.power_on();
  InProcessChannel channel(card);
  if (!channel.transmit(iso7816::CommandApdu::select_by_aid(EchoApplet::kAid())).is_success()) return 1;
  // A case 2 command answered with 16 bytes: GET CHALLENGE-sized.
  const iso7816::CommandApdu generate(0x80, EchoApplet::kInsGenerate, 0x00, 0x00, 16);
  auto through_channel = [&]() -> std::size_t {
    if (channel.transmit(generate).data().size() != 16) std::abort();
    return 1;
  };
  // Baseline: the codec work any transport does for this exchange and nothing else — the host
  // encodes the command and parses the answer, the card parses the command and encodes the answer.
  const Bytes answer(16, 0x42);
  auto codec_only = [&]() -> std::size_t {
    const auto parsed = iso7816::CommandApdu::parse(generate.encode());
    const Bytes wire = iso7816::ResponseApdu(answer, iso7816::StatusWord::Success).encode();
    if (iso7816::ResponseApdu::parse(wire).data().size() != parsed.ne()) std::abort();
    return 1;
  };
  auto c = bench::compare(through_channel, codec_only, rounds, per_round);
  bool ok = bench::report("card.apdu_inproc", c.value, "ops/s", c.baseline, std::nullopt,
                          "echo GENERATE Le=16 via InProcessChannel::transmit; baseline: encode+parse of the same "
                          "command and answer only; goal >= 200000 APDUs/s absolute",
                          c.value >= kApduGoal);

  const Bytes raw_generate = generate.encode();
  auto raw_process = [&]() -> std::size_t {
    if (card.process(raw_generate).size() != 18) std::abort();
    return 1;
  };
  c = bench::compare(raw_process, codec_only, rounds, per_round);
  bench::report("card.apdu_process", c.value, "ops/s", c.baseline, std::nullopt,
                "Card::process on the raw bytes (no channel), same baseline");

  // --- committed page writes ------------------------------------------------------------------
  // A commit of n applet pages writes 2(n+1)+2 pages and CRCs the 12 KiB image: the ideal ratio
  // is n/(2n+4) of the raw rate (1 page: 0.17, 8 pages: 0.40) before the CRC.
  c = commits(formatted_ram(), formatted_ram(), 1, rounds, per_round);
  bench::report("card.commit_1page", c.value, "pages/s", c.baseline, std::nullopt,
                "journalled commit of 1 applet page, RAM image of 192 pages; baseline: raw page writes");
  c = commits(formatted_ram(), formatted_ram(), 8, rounds, per_round);
  bench::report("card.commit_8page", c.value, "pages/s", c.baseline, std::nullopt,
                "journalled commit of 8 applet pages, RAM image of 192 pages; baseline: raw page writes");

  std::string dir_pattern = (std::filesystem::temp_directory_path() / "skillcard-bench-XXXXXX").string();
  if (::mkdtemp(dir_pattern.data()) == nullptr) return 1;
  const std::filesystem::path dir = dir_pattern;
  c = commits(formatted_file(dir / "a1.img"), formatted_file(dir / "b1.img"), 1, rounds, per_round);
  bench::report("card.commit_1page_file", c.value, "pages/s", c.baseline, std::nullopt,
                "as card.commit_1page, written through to an image file (no fsync); baseline: raw page pwrites");
  c = commits(formatted_file(dir / "a8.img"), formatted_file(dir / "b8.img"), 8, rounds, per_round);
  bench::report("card.commit_8page_file", c.value, "pages/s", c.baseline, std::nullopt,
                "as card.commit_8page, written through to an image file (no fsync); baseline: raw page pwrites");
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
