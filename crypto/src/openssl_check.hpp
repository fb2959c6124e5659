// The one checked wrapper over OpenSSL calls: turns a failed return into a CryptoError that
// names the call, OpenSSL's error queue and our call site. Private to the crypto library.
#pragma once

#include <openssl/err.h>

#include <memory>
#include <string>
#include "skillcard/iso7816/call_site.hpp"

#include "skillcard/crypto/types.hpp"

namespace skillcard::crypto::detail {

[[noreturn]] inline void throw_openssl(const char* call, CallSite where) {
  std::string what = std::string("OpenSSL ") + call + " failed";
  unsigned long code = 0;
  bool first = true;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    what += first ? ": " : "; ";
    what += buf;
    first = false;
  }
  throw CryptoError(what, where);
}

// Most OpenSSL calls return 1 on success.
inline void ossl_check(int rc, const char* call, CallSite where = CallSite::current()) {
  if (rc != 1) throw_openssl(call, where);
}

template <class T>
T* ossl_check_ptr(T* p, const char* call, CallSite where = CallSite::current()) {
  if (p == nullptr) throw_openssl(call, where);
  return p;
}

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
template <class T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

}  // namespace skillcard::crypto::detail
