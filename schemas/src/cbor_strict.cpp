// Strict CBOR decoding into Nodes, the readers over them, and the libcbor-backed builders
// (see cbor_strict.hpp).
#include "cbor_strict.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace skillcard::schemas::cbor {

namespace {

using K = DecodeErrorKind;

[[noreturn]] void fail(K kind, std::string_view what, const std::string& detail) {
  throw DecodeError(kind, std::string(what), detail);
}

// RFC 3629 well-formed UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = p[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3Fu);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

class Validator {
 public:
  // `nodes`, when given, receives every item in the order of the encoding.
  Validator(ByteView in, const Limits& limits, std::string_view what, std::vector<Node>* nodes = nullptr)
      : in_(in), limits_(limits), what_(what), nodes_(nodes) {}

  void run() {
    if (in_.size() > limits_.max_size) {
      fail(K::TooLarge, what_,
           std::to_string(in_.size()) + " bytes, at most " + std::to_string(limits_.max_size) + " allowed");
    }
    if (in_.empty()) fail(K::Truncated, what_, "no bytes");
    item(0);
    if (pos_ != in_.size()) {
      fail(K::TrailingBytes, what_,
           std::to_string(in_.size() - pos_) + " bytes after the item at offset " + std::to_string(pos_));
    }
  }

 private:
  std::size_t remaining() const { return in_.size() - pos_; }

  std::string at(std::size_t offset) const { return " at offset " + std::to_string(offset); }

  void item(std::size_t depth) {
    if (depth > limits_.max_depth) fail(K::Malformed, what_, "nested deeper than " + std::to_string(limits_.max_depth));
    if (remaining() < 1) fail(K::Truncated, what_, "item expected" + at(pos_));
    const std::size_t start = pos_;
    const std::uint8_t ib = in_[pos_++];
    const int major = ib >> 5;
    const int ai = ib & 0x1F;
    const std::size_t index = nodes_ != nullptr ? nodes_->size() : 0;
    if (nodes_ != nullptr) nodes_->push_back(Node{static_cast<Major>(major), 1, 0, nullptr});
    item_body(depth, start, major, ai, index);
    if (nodes_ != nullptr) (*nodes_)[index].extent = static_cast<std::uint32_t>(nodes_->size() - index);
  }

  void item_body(std::size_t depth, std::size_t start, int major, int ai, std::size_t index) {
    if (ai == 31) {
      if (major == 7) fail(K::Malformed, what_, "unexpected break" + at(start));
      if (major >= 2 && major <= 5) fail(K::IndefiniteLength, what_, "indefinite-length item" + at(start));
      fail(K::Malformed, what_, "reserved additional information 31" + at(start));
    }
    if (ai >= 28) fail(K::Malformed, what_, "reserved additional information " + std::to_string(ai) + at(start));
    if (major == 7) {
      simple(ai, start);
      if (nodes_ != nullptr) (*nodes_)[index].value = static_cast<std::uint64_t>(ai);
      return;
    }
    const std::uint64_t arg = argument(ai, start);
    if (nodes_ != nullptr) {
      (*nodes_)[index].value = arg;
      (*nodes_)[index].data = in_.data() + pos_;
    }
    switch (major) {
      case 0:
      case 1:
        return;
      case 2:
      case 3: {
        if (arg > remaining()) {
          fail(K::Truncated, what_,
               "string declares " + std::to_string(arg) + " bytes, " + std::to_string(remaining()) + " remain" +
                   at(start));
        }
        const auto n = static_cast<std::size_t>(arg);
        if (major == 3 && !valid_utf8(in_.data() + pos_, n)) fail(K::Malformed, what_, "invalid UTF-8" + at(start));
        pos_ += n;
        return;
      }
      case 4: {
        // Every element takes at least one byte: a count above what remains cannot be real.
        if (arg > remaining()) {
          fail(K::Truncated, what_,
               "array declares " + std::to_string(arg) + " items, " + std::to_string(remaining()) + " bytes remain" +
                   at(start));
        }
        for (std::uint64_t i = 0; i < arg; ++i) item(depth + 1);
        return;
      }
      case 5: {
        if (arg > remaining() / 2) {
          fail(K::Truncated, what_,
               "map declares " + std::to_string(arg) + " pairs, " + std::to_string(remaining()) + " bytes remain" +
                   at(start));
        }
        std::size_t prev_start = 0, prev_len = 0;
        for (std::uint64_t i = 0; i < arg; ++i) {
          const std::size_t key_start = pos_;
          item(depth + 1);
          const std::size_t key_len = pos_ - key_start;
          if (i > 0) {
            // RFC 8949 §4.2.1: keys sorted bytewise by their encodings (a shorter key that is a
            // prefix of a longer one sorts first).
            const int cmp = std::memcmp(in_.data() + prev_start, in_.data() + key_start, std::min(prev_len, key_len));
            if (cmp == 0 && prev_len == key_len) fail(K::DuplicateKey, what_, "map key repeated" + at(key_start));
            if (cmp > 0 || (cmp == 0 && prev_len > key_len)) {
              fail(K::NonCanonical, what_, "map keys not in deterministic order" + at(key_start));
            }
          }
          prev_start = key_start;
          prev_len = key_len;
          item(depth + 1);
        }
        return;
      }
      case 6:
        // Only the outermost item may be tagged (COSE_Sign1); load() takes that tag off.
        if (depth > 0) fail(K::Malformed, what_, "tag " + std::to_string(arg) + " inside the item" + at(start));
        item(depth + 1);
        return;
      default:
        fail(K::Malformed, what_, "unknown major type" + at(start));
    }
  }

  std::uint64_t argument(int ai, std::size_t start) {
    if (ai < 24) return static_cast<std::uint64_t>(ai);
    const std::size_t n = std::size_t{1} << (ai - 24);
    if (remaining() < n) fail(K::Truncated, what_, "item head cut short" + at(start));
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v = (v << 8) | in_[pos_ + k];
    pos_ += n;
    static constexpr std::uint64_t kShortestBelow[] = {24, 0x100, 0x10000, 0x100000000ull};
    if (v < kShortestBelow[ai - 24]) fail(K::NonCanonical, what_, "integer or length not in shortest form" + at(start));
    return v;
  }

  void simple(int ai, std::size_t start) {
    if (ai <= 23) {
      if (ai < 20) fail(K::Malformed, what_, "unassigned simple value" + at(start));
      return;  // false, true, null, undefined
    }
    if (ai == 24) {
      if (remaining() < 1) fail(K::Truncated, what_, "simple value cut short" + at(start));
      const auto v = in_[pos_++];
      if (v < 32) fail(K::NonCanonical, what_, "simple value in two bytes" + at(start));
      fail(K::Malformed, what_, "unassigned simple value" + at(start));
    }
    // Floats appear in no skillcard format, and their deterministic rules are subtle: refuse.
    fail(K::WrongType, what_, "floating-point value" + at(start));
  }

  ByteView in_;
  const Limits& limits_;
  std::string_view what_;
  std::vector<Node>* nodes_;
  std::size_t pos_ = 0;
};

Item adopt(cbor_item_t* item, const char* what) {
  if (item == nullptr) throw std::bad_alloc();
  (void)what;
  return Item(item);
}

std::string key_text(std::int64_t key) { return std::to_string(key); }

}  // namespace

void ItemRelease::operator()(cbor_item_t* item) const noexcept { cbor_decref(&item); }

void validate(ByteView in, const Limits& limits, std::string_view what) { Validator(in, limits, what).run(); }

Tree load(ByteView in, const Limits& limits, std::string_view what, std::optional<std::uint64_t>* tag) {
  Tree tree;
  // Every item takes at least one byte; most of ours take two or more.
  tree.nodes_.reserve(std::min<std::size_t>(in.size() / 2 + 1, 4096));
  Validator(in, limits, what, &tree.nodes_).run();
  if (tree.nodes_.front().major == Major::Tag) {
    if (tag == nullptr) fail(K::WrongTag, what, "a tag where none is expected");
    *tag = tree.nodes_.front().value;
    tree.root_ = 1;  // the validator allows a tag only outermost, and checked an item follows
  } else if (tag != nullptr) {
    tag->reset();
  }
  return tree;
}

Item make_uint(std::uint64_t v) {
  if (v <= 0xFF) return adopt(cbor_build_uint8(static_cast<std::uint8_t>(v)), "uint8");
  if (v <= 0xFFFF) return adopt(cbor_build_uint16(static_cast<std::uint16_t>(v)), "uint16");
  if (v <= 0xFFFFFFFF) return adopt(cbor_build_uint32(static_cast<std::uint32_t>(v)), "uint32");
  return adopt(cbor_build_uint64(v), "uint64");
}

Item make_int(std::int64_t v) {
  if (v >= 0) return make_uint(static_cast<std::uint64_t>(v));
  const auto n = static_cast<std::uint64_t>(-(v + 1));  // CBOR stores -1 - v
  if (n <= 0xFF) return adopt(cbor_build_negint8(static_cast<std::uint8_t>(n)), "negint8");
  if (n <= 0xFFFF) return adopt(cbor_build_negint16(static_cast<std::uint16_t>(n)), "negint16");
  if (n <= 0xFFFFFFFF) return adopt(cbor_build_negint32(static_cast<std::uint32_t>(n)), "negint32");
  return adopt(cbor_build_negint64(n), "negint64");
}

Item make_bytes(ByteView v) {
  static constexpr std::uint8_t kEmpty = 0;
  return adopt(cbor_build_bytestring(v.empty() ? &kEmpty : v.data(), v.size()), "bytestring");
}

Item make_text(std::string_view v) {
  // The decoders refuse invalid UTF-8: never write what they would refuse.
  if (!valid_utf8(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()))
    throw std::invalid_argument("text is not valid UTF-8");
  return adopt(cbor_build_stringn(v.data(), v.size()), "string");
}

Item make_array(std::vector<Item> items) {
  Item array = adopt(cbor_new_definite_array(items.size()), "array");
  for (auto& i : items) {
    if (!cbor_array_push(array.get(), i.get())) throw std::bad_alloc();
  }
  return array;  // the array holds its own references; ours are released with `items`
}

Item make_map(std::vector<std::pair<Item, Item>> entries) {
  std::vector<std::pair<Bytes, std::size_t>> order;
  order.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) order.emplace_back(serialize(entries[i].first.get()), i);
  std::sort(order.begin(), order.end());  // bytewise; a prefix sorts first, as RFC 8949 wants
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (order[i].first == order[i - 1].first) throw std::logic_error("duplicate map key " + to_hex(order[i].first));
  }
  Item map = adopt(cbor_new_definite_map(entries.size()), "map");
  for (const auto& [key_bytes, index] : order) {
    if (!cbor_map_add(map.get(), cbor_pair{entries[index].first.get(), entries[index].second.get()})) {
      throw std::bad_alloc();
    }
  }
  return map;
}

Item make_tag(std::uint64_t tag, Item item) { return adopt(cbor_build_tag(tag, item.get()), "tag"); }

Bytes serialize(const cbor_item_t* item) {
  unsigned char* buffer = nullptr;
  std::size_t capacity = 0;
  const std::size_t length = cbor_serialize_alloc(item, &buffer, &capacity);
  if (length == 0) {
    std::free(buffer);
    throw std::bad_alloc();
  }
  Bytes out(buffer, buffer + length);
  std::free(buffer);
  return out;
}

const char* type_name(const Node* item) {
  switch (item->major) {
    case Major::Uint:
      return "unsigned integer";
    case Major::Negint:
      return "negative integer";
    case Major::Bytes:
      return "byte string";
    case Major::Text:
      return "text string";
    case Major::Array:
      return "array";
    case Major::Map:
      return "map";
    case Major::Tag:
      return "tag";
    case Major::Simple:
      return "simple value";
  }
  return "unknown";
}

namespace {
[[noreturn]] void wrong_type(const Node* item, std::string_view field, const char* expected) {
  throw DecodeError(K::WrongType, std::string(field), std::string("expected ") + expected + ", got " + type_name(item));
}
}  // namespace

bool is_int(const Node* item) { return item->major == Major::Uint || item->major == Major::Negint; }

std::uint64_t as_uint(const Node* item, std::string_view field) {
  if (item->major != Major::Uint) wrong_type(item, field, "unsigned integer");
  return item->value;
}

std::int64_t as_int(const Node* item, std::string_view field) {
  if (!is_int(item)) wrong_type(item, field, "integer");
  if (item->value > static_cast<std::uint64_t>(INT64_MAX)) {
    throw DecodeError(K::OutOfRange, std::string(field), "integer beyond 64 bits");
  }
  const auto v = static_cast<std::int64_t>(item->value);
  return item->major == Major::Uint ? v : -1 - v;
}

ByteView as_bytes(const Node* item, std::string_view field) {
  if (item->major != Major::Bytes) wrong_type(item, field, "byte string");
  return {item->data, static_cast<std::size_t>(item->value)};
}

std::string_view as_text(const Node* item, std::string_view field) {
  if (item->major != Major::Text) wrong_type(item, field, "text string");
  return {reinterpret_cast<const char*>(item->data), static_cast<std::size_t>(item->value)};
}

std::vector<const Node*> as_array(const Node* item, std::string_view field) {
  if (item->major != Major::Array) wrong_type(item, field, "array");
  std::vector<const Node*> out;
  out.reserve(static_cast<std::size_t>(item->value));
  for (const Node* i = item->first(); out.size() < item->value; i = i->next()) out.push_back(i);
  return out;
}

std::vector<std::pair<const Node*, const Node*>> as_map(const Node* item, std::string_view field) {
  if (item->major != Major::Map) wrong_type(item, field, "map");
  std::vector<std::pair<const Node*, const Node*>> out;
  out.reserve(static_cast<std::size_t>(item->value));
  for (const Node* k = item->first(); out.size() < item->value;) {
    const Node* v = k->next();
    out.emplace_back(k, v);
    k = v->next();
  }
  return out;
}

// --- MapReader ------------------------------------------------------------------------------

MapReader::MapReader(const Node* map, std::string structure) : structure_(std::move(structure)) {
  if (map->major != Major::Map) wrong_type(map, structure_, "map");
  entries_.reserve(static_cast<std::size_t>(map->value));
  // A key that is no integer (or beyond 64 bits) is reported at the first read, after version():
  // in a newer format it may be legal, and then that is the precise reason.
  std::uint64_t pairs = 0;
  for (const Node* k = map->first(); pairs < map->value; ++pairs) {
    const Node* v = k->next();
    if (!is_int(k)) {
      if (!bad_key_) {
        bad_key_ = std::make_exception_ptr(
            DecodeError(K::WrongType, structure_, std::string("map key must be an integer, got ") + type_name(k)));
      }
    } else if (k->value > static_cast<std::uint64_t>(INT64_MAX)) {
      if (!bad_key_) {
        bad_key_ = std::make_exception_ptr(DecodeError(K::OutOfRange, structure_ + " key", "integer beyond 64 bits"));
      }
    } else {
      entries_.push_back({as_int(k, {}), v});
    }
    k = v->next();
  }
}

std::string MapReader::field(std::int64_t key, std::string_view name) const {
  return structure_ + " key " + key_text(key) + " (" + std::string(name) + ")";
}

MapReader::Entry* MapReader::lookup(std::int64_t key, std::string_view) {
  if (bad_key_) std::rethrow_exception(bad_key_);
  for (auto& e : entries_) {
    if (e.key == key) {
      e.read = true;
      return &e;
    }
  }
  return nullptr;
}

const Node* MapReader::find(std::int64_t key, std::string_view name) {
  const auto* e = lookup(key, name);
  return e ? e->value : nullptr;
}

const Node* MapReader::require(std::int64_t key, std::string_view name) {
  const auto* item = find(key, name);
  if (item == nullptr) throw DecodeError(K::MissingField, field(key, name), "required");
  return item;
}

std::uint64_t MapReader::version(std::uint64_t known) {
  // A newer format first: its map may hold what this version calls a bad key.
  for (const auto& e : entries_) {
    if (e.key == -1 && e.value->major == Major::Uint && e.value->value > known) {
      throw DecodeError(
          K::NewerFormat, field(-1, "format version"),
          "version " + std::to_string(e.value->value) + ", this decoder knows up to " + std::to_string(known));
    }
  }
  const auto* item = require(-1, "format version");
  if (item->major != Major::Uint) wrong_type(item, field(-1, "format version"), "unsigned integer");
  const auto v = item->value;
  if (v > known) {
    throw DecodeError(K::NewerFormat, field(-1, "format version"),
                      "version " + std::to_string(v) + ", this decoder knows up to " + std::to_string(known));
  }
  if (v == 0) throw DecodeError(K::OutOfRange, field(-1, "format version"), "version 0 does not exist");
  return v;
}

std::uint64_t MapReader::uint(std::int64_t key, std::string_view name, std::uint64_t min, std::uint64_t max) {
  const auto v = optional_uint(key, name, min, max);
  if (!v) throw DecodeError(K::MissingField, field(key, name), "required");
  return *v;
}

std::optional<std::uint64_t> MapReader::optional_uint(std::int64_t key, std::string_view name, std::uint64_t min,
                                                      std::uint64_t max) {
  const auto* item = find(key, name);
  if (item == nullptr) return std::nullopt;
  // Field names are built only on the error paths: this runs for every claim of every token.
  if (item->major != Major::Uint) wrong_type(item, field(key, name), "unsigned integer");
  const auto v = item->value;
  if (v < min || v > max) {
    throw DecodeError(K::OutOfRange, field(key, name),
                      std::to_string(v) + " not in " + std::to_string(min) + ".." + std::to_string(max));
  }
  return v;
}

Bytes MapReader::bytes(std::int64_t key, std::string_view name, std::size_t min_size, std::size_t max_size) {
  const auto* item = require(key, name);
  if (item->major != Major::Bytes) wrong_type(item, field(key, name), "byte string");
  const ByteView v = as_bytes(item, {});
  if (v.size() < min_size || v.size() > max_size) {
    throw DecodeError(K::OutOfRange, field(key, name),
                      std::to_string(v.size()) + " bytes, expected " +
                          (min_size == max_size ? std::to_string(min_size)
                                                : std::to_string(min_size) + ".." + std::to_string(max_size)));
  }
  return Bytes(v.begin(), v.end());
}

std::string MapReader::text(std::int64_t key, std::string_view name, std::size_t min_size, std::size_t max_size) {
  const auto* item = require(key, name);
  if (item->major != Major::Text) wrong_type(item, field(key, name), "text string");
  const std::string_view v = as_text(item, {});
  if (v.size() < min_size || v.size() > max_size) {
    throw DecodeError(K::OutOfRange, field(key, name),
                      std::to_string(v.size()) + " bytes of text, expected " + std::to_string(min_size) + ".." +
                          std::to_string(max_size));
  }
  return std::string(v);
}

std::optional<std::vector<std::uint64_t>> MapReader::optional_uint_array(std::int64_t key, std::string_view name,
                                                                         std::uint64_t min, std::uint64_t max,
                                                                         std::size_t max_count) {
  const auto* item = find(key, name);
  if (item == nullptr) return std::nullopt;
  // The field's name is built only when something is wrong with it.
  const auto f = [&] { return field(key, name); };
  if (item->major != Major::Array) wrong_type(item, f(), "array");
  const auto items = as_array(item, {});
  if (items.empty() || items.size() > max_count) {
    throw DecodeError(K::OutOfRange, f(),
                      std::to_string(items.size()) + " entries, expected 1.." + std::to_string(max_count));
  }
  std::vector<std::uint64_t> out;
  out.reserve(items.size());
  for (const auto* i : items) {
    if (i->major != Major::Uint) wrong_type(i, f(), "unsigned integer");
    const auto v = i->value;
    if (v < min || v > max) {
      throw DecodeError(K::OutOfRange, f(),
                        std::to_string(v) + " not in " + std::to_string(min) + ".." + std::to_string(max));
    }
    if (!out.empty() && v <= out.back())
      throw DecodeError(K::NonCanonical, f(), "entries must be ascending without repeats");
    out.push_back(v);
  }
  return out;
}

std::vector<Bytes> MapReader::bytes_array(std::int64_t key, std::string_view name, std::size_t size,
                                          std::size_t max_count) {
  const auto f = field(key, name);
  const auto items = as_array(require(key, name), f);
  if (items.size() > max_count) {
    throw DecodeError(K::OutOfRange, f,
                      std::to_string(items.size()) + " entries, at most " + std::to_string(max_count));
  }
  std::vector<Bytes> out;
  for (const auto* i : items) {
    const auto v = as_bytes(i, f);
    if (v.size() != size)
      throw DecodeError(K::OutOfRange, f, std::to_string(v.size()) + " bytes, expected " + std::to_string(size));
    out.emplace_back(v.begin(), v.end());
  }
  return out;
}

void MapReader::finish() const {
  if (bad_key_) std::rethrow_exception(bad_key_);
  for (const auto& e : entries_) {
    if (!e.read)
      throw DecodeError(K::UnknownKey, structure_ + " key " + key_text(e.key), "not defined by this format version");
  }
}

// --- MapWriter ------------------------------------------------------------------------------

MapWriter& MapWriter::uint(std::int64_t key, std::uint64_t value) { return item(key, make_uint(value)); }
MapWriter& MapWriter::bytes(std::int64_t key, ByteView value) { return item(key, make_bytes(value)); }
MapWriter& MapWriter::text(std::int64_t key, std::string_view value) { return item(key, make_text(value)); }

MapWriter& MapWriter::uint_array(std::int64_t key, const std::vector<std::uint64_t>& values) {
  std::vector<Item> items;
  for (auto v : values) items.push_back(make_uint(v));
  return item(key, make_array(std::move(items)));
}

MapWriter& MapWriter::bytes_array(std::int64_t key, const std::vector<Bytes>& values) {
  std::vector<Item> items;
  for (const auto& v : values) items.push_back(make_bytes(v));
  return item(key, make_array(std::move(items)));
}

MapWriter& MapWriter::item(std::int64_t key, Item value) {
  entries_.emplace_back(make_int(key), std::move(value));
  return *this;
}

Item MapWriter::build() { return make_map(std::move(entries_)); }

Bytes MapWriter::encode() { return serialize(build().get()); }

}  // namespace skillcard::schemas::cbor
