// Page medium: RAM copy, write-through image file, write counting and the power-cut injector.
#include "skillcard/card/eeprom.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "unique_fd.hpp"

namespace skillcard::card {

const char* to_string(ImageError::Reason reason) noexcept {
  switch (reason) {
    case ImageError::Reason::Unreadable:
      return "unreadable";
    case ImageError::Reason::WrongSize:
      return "wrong-size";
    case ImageError::Reason::BadMagic:
      return "bad-magic";
    case ImageError::Reason::NewerVersion:
      return "newer-version";
    case ImageError::Reason::OlderVersion:
      return "older-version";
    case ImageError::Reason::PageCountMismatch:
      return "page-count-mismatch";
    case ImageError::Reason::BadCrc:
      return "bad-crc";
    case ImageError::Reason::InUse:
      return "in-use";
  }
  return "unknown";
}

struct Eeprom::State {
  Bytes bytes;
  detail::UniqueFd fd;
  std::filesystem::path path;
  Durability durability = Durability::Process;
  std::uint64_t writes = 0;
  std::optional<PowerCut> cut;
  std::uint64_t armed_at = 0;
  bool power_lost = false;
};

namespace {

std::string errno_text(int err) { return std::strerror(err); }

void check_page_count(std::size_t pages, const std::string& what) {
  if (pages < kMinPages || pages > kMaxPages) {
    throw ImageError(ImageError::Reason::WrongSize, what + " has " + std::to_string(pages) + " pages; an image has " +
                                                        std::to_string(kMinPages) + ".." + std::to_string(kMaxPages));
  }
}

void check_size(std::size_t size, const std::string& what) {
  if (size % kPageSize != 0) {
    throw ImageError(ImageError::Reason::WrongSize,
                     what + " is " + std::to_string(size) + " bytes, not a whole number of 64-byte pages");
  }
  check_page_count(size / kPageSize, what);
}

// SplitMix64: a tiny, well-mixed generator, enough to make torn pages reproducible from a seed.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A torn page: each byte is the old one, the new one or garbage, as a page program interrupted
// part-way (some cells erased, some programmed, some in between) would leave it.
void tear(std::uint8_t* page, ByteView incoming, std::uint64_t seed, std::uint64_t index) {
  std::uint64_t state = seed ^ (index * 0xD1B54A32D192ED03ull);
  for (std::size_t i = 0; i < kPageSize; ++i) {
    const std::uint64_t r = splitmix64(state);
    switch (r % 3) {
      case 0:
        break;  // old byte stays
      case 1:
        page[i] = incoming[i];
        break;
      default:
        page[i] = static_cast<std::uint8_t>(r >> 32);
        break;
    }
  }
}

}  // namespace

Eeprom::Eeprom(std::unique_ptr<State> state) : s_(std::move(state)) {}
Eeprom::Eeprom(Eeprom&&) noexcept = default;
Eeprom& Eeprom::operator=(Eeprom&&) noexcept = default;
Eeprom::~Eeprom() = default;

namespace {
// One simulator per image: two would each keep their own copy and write through to the same
// file, and the header CRC each keeps from its own view would refuse the card at the next mount.
void lock_image(int fd, const std::filesystem::path& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return;
  if (errno == EWOULDBLOCK) {
    throw ImageError(ImageError::Reason::InUse,
                     "image " + path.string() + " is in use by another simulator (one card, one simulator)");
  }
  throw ImageError(ImageError::Reason::Unreadable, "cannot lock image " + path.string() + ": " + errno_text(errno));
}
}  // namespace

Eeprom Eeprom::in_memory(std::size_t page_count) {
  check_page_count(page_count, "a new image");
  auto s = std::make_unique<State>();
  s->bytes.assign(page_count * kPageSize, 0);
  return Eeprom(std::move(s));
}

Eeprom Eeprom::from_bytes(ByteView image) {
  check_size(image.size(), "the image");
  auto s = std::make_unique<State>();
  s->bytes.assign(image.begin(), image.end());
  return Eeprom(std::move(s));
}

Eeprom Eeprom::open_file(const std::filesystem::path& path, Durability durability) {
  detail::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    throw ImageError(ImageError::Reason::Unreadable, "cannot open image " + path.string() + ": " + errno_text(errno));
  }
  lock_image(fd.get(), path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw ImageError(ImageError::Reason::Unreadable, "cannot stat image " + path.string() + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw ImageError(ImageError::Reason::Unreadable, "image " + path.string() + " is not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  check_size(size, "image " + path.string());
  auto s = std::make_unique<State>();
  s->bytes.resize(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd.get(), s->bytes.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw ImageError(ImageError::Reason::Unreadable,
                       "cannot read image " + path.string() + ": " + (n == 0 ? "file shrank" : errno_text(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  s->fd = std::move(fd);
  s->path = path;
  s->durability = durability;
  return Eeprom(std::move(s));
}

Eeprom Eeprom::create_file(const std::filesystem::path& path, std::size_t page_count, Durability durability) {
  check_page_count(page_count, "a new image");
  detail::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    throw ImageError(ImageError::Reason::Unreadable, "cannot create image " + path.string() + ": " + errno_text(errno));
  }
  lock_image(fd.get(), path);
  const auto size = static_cast<off_t>(page_count * kPageSize);
  if (::ftruncate(fd.get(), size) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    throw ImageError(ImageError::Reason::Unreadable, "cannot size image " + path.string() + ": " + errno_text(err));
  }
  auto s = std::make_unique<State>();
  s->bytes.assign(page_count * kPageSize, 0);
  s->fd = std::move(fd);
  s->path = path;
  s->durability = durability;
  return Eeprom(std::move(s));
}

std::size_t Eeprom::page_count() const noexcept { return s_->bytes.size() / kPageSize; }

ByteView Eeprom::page(std::size_t number) const {
  if (number >= page_count()) {
    throw std::out_of_range("page " + std::to_string(number) + " of " + std::to_string(page_count()));
  }
  return ByteView(s_->bytes).subspan(number * kPageSize, kPageSize);
}

ByteView Eeprom::image() const noexcept { return s_->bytes; }

Eeprom Eeprom::clone() const { return from_bytes(s_->bytes); }

void Eeprom::write_page(std::size_t number, ByteView data) {
  if (number >= page_count()) {
    throw std::out_of_range("page " + std::to_string(number) + " of " + std::to_string(page_count()));
  }
  if (data.size() != kPageSize) {
    throw std::invalid_argument("data: a page write takes 64 bytes, got " + std::to_string(data.size()));
  }
  if (s_->power_lost) throw PowerLost("write to page " + std::to_string(number) + " after power was lost");

  const std::uint64_t index = s_->writes - s_->armed_at;
  ++s_->writes;
  std::uint8_t* target = s_->bytes.data() + number * kPageSize;
  std::uint8_t staged[kPageSize];
  std::copy(data.begin(), data.end(), staged);
  std::optional<CutMode> cut;
  if (s_->cut && s_->cut->write_index == index) {
    cut = s_->cut->mode;
    if (*cut == CutMode::During) {
      std::copy(target, target + kPageSize, staged);
      tear(staged, data, s_->cut->seed, index);
    }
    s_->cut.reset();
  }

  if (cut != CutMode::Before) {
    if (s_->fd) {
      std::size_t done = 0;
      while (done < kPageSize) {
        const ssize_t n =
            ::pwrite(s_->fd.get(), staged + done, kPageSize - done, static_cast<off_t>(number * kPageSize + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          // The RAM copy keeps the old page, so it still equals what the file can hold.
          s_->power_lost = true;
          throw PowerLost("cannot write page " + std::to_string(number) + " to " + s_->path.string() + ": " +
                          errno_text(errno));
        }
        done += static_cast<std::size_t>(n);
      }
    }
    std::copy(staged, staged + kPageSize, target);
  }
  if (cut) {
    s_->power_lost = true;
    throw PowerLost("power cut at write " + std::to_string(index) + " (page " + std::to_string(number) + ")");
  }
}

void Eeprom::barrier() {
  if (!s_->fd || s_->durability != Durability::System || s_->power_lost) return;
  if (::fdatasync(s_->fd.get()) != 0) {
    s_->power_lost = true;
    throw PowerLost("cannot flush " + s_->path.string() + ": " + errno_text(errno));
  }
}

std::uint64_t Eeprom::writes() const noexcept { return s_->writes; }

void Eeprom::arm(PowerCut cut) {
  s_->cut = cut;
  s_->armed_at = s_->writes;
}

void Eeprom::disarm() noexcept { s_->cut.reset(); }

std::optional<PowerCut> Eeprom::armed() const noexcept { return s_->cut; }

bool Eeprom::power_lost() const noexcept { return s_->power_lost; }

void Eeprom::restore_power() noexcept { s_->power_lost = false; }

Durability Eeprom::durability() const noexcept { return s_->durability; }

const std::filesystem::path& Eeprom::path() const noexcept { return s_->path; }

}  // namespace skillcard::card
