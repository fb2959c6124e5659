#include "powercut_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace skillcard::ledger::test::powercut {

namespace {

struct Undo {
  sqlite3_int64 offset;
  std::vector<unsigned char> old;  // the bytes there before (only those below the synced size)
};

struct FileState {
  sqlite3_int64 synced_size = 0;
  std::vector<Undo> undo;  // in write order; applied in reverse at the cut
};

struct Global {
  std::mutex mutex;
  sqlite3_vfs* base = nullptr;
  sqlite3_vfs vfs{};
  std::map<std::string, FileState> files;
  bool dead = false;
  std::uint64_t writes = 0;
  std::uint64_t cut_at = 0;  // 0: not armed
};
Global& g() {
  static Global global;
  return global;
}

struct File {
  sqlite3_file base;  // must be first
  sqlite3_file* real;
  const char* path;  // nullptr for temporary files (not tracked)
};

sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }
const char* path_of(sqlite3_file* f) { return reinterpret_cast<File*>(f)->path; }

sqlite3_int64 size_of(sqlite3_file* r) {
  sqlite3_int64 size = 0;
  if (r->pMethods->xFileSize(r, &size) != SQLITE_OK) return 0;
  return size;
}

// Puts every tracked file back to its last synced state, through fresh descriptors.
void do_cut() {
  auto& s = g();
  for (auto& [path, state] : s.files) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    for (auto it = state.undo.rbegin(); it != state.undo.rend(); ++it) {
      if (!it->old.empty() && ::pwrite(fd, it->old.data(), it->old.size(), it->offset) < 0) break;
    }
    if (::ftruncate(fd, state.synced_size) != 0) {
      // best effort: the test then sees a damaged file and fails loudly
    }
    ::close(fd);
    state.undo.clear();
  }
  s.dead = true;
}

// Records what a change of [offset, offset + n) overwrites below the synced size.
void remember(sqlite3_file* f, sqlite3_int64 offset, sqlite3_int64 n) {
  const char* p = path_of(f);
  if (p == nullptr) return;
  auto& state = g().files[p];
  const sqlite3_int64 end = std::min(offset + n, state.synced_size);
  if (end <= offset) return;
  Undo u{offset, std::vector<unsigned char>(static_cast<std::size_t>(end - offset))};
  sqlite3_file* r = real(f);
  const int rc = r->pMethods->xRead(r, u.old.data(), static_cast<int>(u.old.size()), offset);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) throw std::runtime_error("powercut: read for undo failed");
  state.undo.push_back(std::move(u));
}

bool tick() {  // true: this write is the cut
  auto& s = g();
  ++s.writes;
  if (s.cut_at != 0 && s.writes >= s.cut_at) {
    do_cut();
    return true;
  }
  return false;
}

int x_close(sqlite3_file* f) {
  auto* file = reinterpret_cast<File*>(f);
  const int rc = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  {
    std::lock_guard lock(g().mutex);
    if (g().dead) return SQLITE_IOERR_READ;
  }
  return real(f)->pMethods->xRead(real(f), buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  std::lock_guard lock(g().mutex);
  if (g().dead || tick()) return SQLITE_IOERR_WRITE;
  remember(f, off, n);
  return real(f)->pMethods->xWrite(real(f), buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  std::lock_guard lock(g().mutex);
  if (g().dead || tick()) return SQLITE_IOERR_TRUNCATE;
  const auto current = size_of(real(f));
  if (size < current) remember(f, size, current - size);
  return real(f)->pMethods->xTruncate(real(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
  std::lock_guard lock(g().mutex);
  if (g().dead) return SQLITE_IOERR_FSYNC;
  // The power cut is simulated, so durability is bookkeeping: no real fsync (keeps tests fast).
  (void)flags;
  const int rc = SQLITE_OK;
  if (path_of(f) != nullptr) {
    auto& state = g().files[path_of(f)];
    state.undo.clear();
    state.synced_size = size_of(real(f));
  }
  return rc;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  {
    std::lock_guard lock(g().mutex);
    if (g().dead) return SQLITE_IOERR_FSTAT;
  }
  return real(f)->pMethods->xFileSize(real(f), size);
}
int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int x_check_reserved(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
int x_file_control(sqlite3_file* f, int op, void* arg) {
  if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_SYNC) {
    std::lock_guard lock(g().mutex);
    if (g().dead) return SQLITE_IOERR;
  }
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int x_device(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), page, size, extend, p);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) {
  *p = nullptr;  // no memory-mapped I/O: every page goes through xRead
  (void)f;
  (void)off;
  (void)n;
  return SQLITE_OK;
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  (void)f;
  (void)off;
  (void)p;
  return SQLITE_OK;
}

const sqlite3_io_methods kMethods = {
    3,          x_close,       x_read,           x_write,        x_truncate,    x_sync,   x_file_size,
    x_lock,     x_unlock,      x_check_reserved, x_file_control, x_sector_size, x_device, x_shm_map,
    x_shm_lock, x_shm_barrier, x_shm_unmap,      x_fetch,        x_unfetch,
};

int v_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<File*>(f);
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->path = name;
  file->base.pMethods = nullptr;
  sqlite3_vfs* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  {
    std::lock_guard lock(g().mutex);
    if (g().dead) return SQLITE_CANTOPEN;
  }
  const int rc = base->xOpen(base, name, file->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  file->base.pMethods = &kMethods;
  if (name != nullptr) {
    std::lock_guard lock(g().mutex);
    auto [it, inserted] = g().files.try_emplace(name);
    if (inserted || it->second.undo.empty()) it->second.synced_size = size_of(file->real);
  }
  return SQLITE_OK;
}
int v_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  std::lock_guard lock(g().mutex);
  if (g().dead) return SQLITE_IOERR_DELETE;
  g().files.erase(name);
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xDelete(base, name, sync_dir);
}
int v_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xAccess(base, name, flags, out);
}
int v_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xFullPathname(base, name, n, out);
}
void* v_dlopen(sqlite3_vfs* vfs, const char* name) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xDlOpen(base, name);
}
void v_dlerror(sqlite3_vfs* vfs, int n, char* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  base->xDlError(base, n, out);
}
void (*v_dlsym(sqlite3_vfs* vfs, void* h, const char* sym))(void) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xDlSym(base, h, sym);
}
void v_dlclose(sqlite3_vfs* vfs, void* h) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  base->xDlClose(base, h);
}
int v_randomness(sqlite3_vfs* vfs, int n, char* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xRandomness(base, n, out);
}
int v_sleep(sqlite3_vfs* vfs, int us) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xSleep(base, us);
}
int v_current_time(sqlite3_vfs* vfs, double* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xCurrentTime(base, out);
}
int v_last_error(sqlite3_vfs* vfs, int n, char* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xGetLastError(base, n, out);
}
int v_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
  return base->xCurrentTimeInt64(base, out);
}

}  // namespace

void install() {
  auto& s = g();
  std::lock_guard lock(s.mutex);
  if (s.base != nullptr) return;
  s.base = sqlite3_vfs_find(nullptr);
  if (s.base == nullptr) throw std::runtime_error("no default VFS");
  s.vfs.iVersion = 2;
  s.vfs.szOsFile = static_cast<int>(sizeof(File)) + s.base->szOsFile;
  s.vfs.mxPathname = s.base->mxPathname;
  s.vfs.zName = kVfsName;
  s.vfs.pAppData = s.base;
  s.vfs.xOpen = v_open;
  s.vfs.xDelete = v_delete;
  s.vfs.xAccess = v_access;
  s.vfs.xFullPathname = v_full_pathname;
  s.vfs.xDlOpen = v_dlopen;
  s.vfs.xDlError = v_dlerror;
  s.vfs.xDlSym = v_dlsym;
  s.vfs.xDlClose = v_dlclose;
  s.vfs.xRandomness = v_randomness;
  s.vfs.xSleep = v_sleep;
  s.vfs.xCurrentTime = v_current_time;
  s.vfs.xGetLastError = v_last_error;
  s.vfs.xCurrentTimeInt64 = v_current_time_int64;
  if (sqlite3_vfs_register(&s.vfs, 0) != SQLITE_OK) throw std::runtime_error("sqlite3_vfs_register failed");
}

void arm(std::uint64_t cut_at_write) {
  std::lock_guard lock(g().mutex);
  g().writes = 0;
  g().cut_at = cut_at_write;
}

void cut_now() {
  std::lock_guard lock(g().mutex);
  if (!g().dead) do_cut();
}

bool has_cut() {
  std::lock_guard lock(g().mutex);
  return g().dead;
}

std::uint64_t writes_seen() {
  std::lock_guard lock(g().mutex);
  return g().writes;
}

void restore_power() {
  std::lock_guard lock(g().mutex);
  g().dead = false;
  g().cut_at = 0;
  g().writes = 0;
  g().files.clear();
}

}  // namespace skillcard::ledger::test::powercut
