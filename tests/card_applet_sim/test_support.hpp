// Shared pieces of the card OS tests: a small test applet with a two-step "PIN check", lifecycle
// logging and misbehaviours the dispatcher must survive; card and image builders; hex helpers;
// a temporary folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "skillcard/card/applet.hpp"
#include "skillcard/card/card.hpp"
#include "skillcard/card/echo_applet.hpp"

namespace skillcard::card::testing {

// AID F0 74 65 73 74 01 ("test" under the proprietary F0 prefix). CLA 00 and 80 are accepted.
// Persistent layout of its window: 0 tries left, 1-4 successful checks (uint32), 5-8 PIN.
// Transient RAM: 0 = "verified" flag.
class TestApplet : public Applet {
 public:
  static const Bytes& kAid();
  static constexpr std::uint8_t kInsEcho = 0x50;          // data → data (any CLA 00/80)
  static constexpr std::uint8_t kInsPersonalise = 0x52;   // data = 4-byte PIN → tries 3, one commit
  static constexpr std::uint8_t kInsVerify = 0x54;        // data = PIN: step 1 tries-1; match: step 2
  static constexpr std::uint8_t kInsVerified = 0x56;      // → 01 if verified since selection, else 00
  static constexpr std::uint8_t kInsThrowRuntime = 0x58;  // throws std::runtime_error
  static constexpr std::uint8_t kInsTooLarge = 0x5A;      // writes 15 applet pages in one transaction
  static constexpr std::uint8_t kInsSwallow = 0x5C;       // commits, swallowing every exception
  static constexpr std::uint8_t kInsStep = 0x5E;          // P1 = steps, P2 = pages per step, one byte each

  explicit TestApplet(std::vector<std::string>* log = nullptr) : log_(log) {}

  Bytes aid() const override { return kAid(); }
  std::size_t transient_size() const override { return 8; }
  Bytes on_select(AppletContext& context) override;
  void on_deselect(AppletContext& context) override;
  void on_power_reset(AppletContext& context) override;
  Bytes process(const iso7816::CommandApdu& command, AppletContext& context) override;

  bool refuse_select = false;

 private:
  void note(const std::string& event) {
    if (log_) log_->push_back(event);
  }
  std::vector<std::string>* log_;
};

// Window sizes the helpers install the applets with.
inline constexpr std::size_t kEchoOffset = 0;
inline constexpr std::size_t kEchoSize = 15 * 64;
inline constexpr std::size_t kTestOffset = 15 * 64;
inline constexpr std::size_t kTestSize = 15 * 64;
inline constexpr std::size_t kTestPages = 17 + 30;

// A formatted RAM image of `pages` pages.
Eeprom formatted(std::size_t pages = kTestPages);

// A powered-off card on a fresh RAM image with the echo applet installed first and the test
// applet second. `test_applet` (optional) receives a pointer to the installed test applet.
std::unique_ptr<Card> make_card(std::vector<std::string>* log = nullptr, TestApplet** test_applet = nullptr,
                                Eeprom eeprom = formatted());

// process() with hex in and hex out, e.g. send(card, "80 12 00 00 04") == "000102039000".
std::string send(Card& card, std::string_view apdu_hex);
std::string select_hex(const Bytes& aid, std::string_view p2 = "00", bool with_le = true);

// A fresh folder under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace skillcard::card::testing
