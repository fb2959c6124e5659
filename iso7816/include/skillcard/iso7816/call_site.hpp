// Where a checked C API call was made, for error messages. std::source_location would do, but
// clang 14 (the fuzz build) cannot use libstdc++ 12's, while both compilers have these builtins.
#pragma once

namespace skillcard {

struct CallSite {
  const char* file;
  unsigned line;
  const char* function;

  static constexpr CallSite current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
                                    const char* function = __builtin_FUNCTION()) noexcept {
    return {file, line, function};
  }
};

}  // namespace skillcard
