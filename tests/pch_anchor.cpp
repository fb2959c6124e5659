// Anchor of the tests' shared precompiled header (tests/CMakeLists.txt): CMake builds the
// header with this target, and every test target reuses it.
