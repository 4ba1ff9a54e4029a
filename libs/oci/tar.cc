#include "oci/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::oci {
namespace {

archive* A(void* p) { return static_cast<archive*>(p); }

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;

Status ArchiveError(archive* a, std::string_view what) {
  const char* msg = archive_error_string(a);
  return DataLoss(std::string(what) + ": " + (msg ? msg : "unknown libarchive error"), "corrupt_layer");
}

class ArchiveEntryData final : public EntryData {
 public:
  explicit ArchiveEntryData(archive* a) : a_(a) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
    if (n < 0) return ArchiveError(a_, "reading entry data");
    return static_cast<size_t>(n);
  }

 private:
  archive* a_;
};

Status ReadEntries(archive* a, const TarLimits& limits, const TarEntryFn& fn) {
  uint64_t total = limits.counted_before;
  uint64_t count = 0;
  auto too_much = [&] {
    return InvalidArgument("uncompressed image content exceeds the limit of " + std::to_string(limits.max_total_bytes) +
                               " bytes",
                           "layer_too_large");
  };
  if (total > limits.max_total_bytes) return too_much();
  ArchiveEntryData data(a);
  while (true) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(a, "reading tar header");
    if (++count > limits.max_entries) {
      return InvalidArgument("layer has more than " + std::to_string(limits.max_entries) + " entries", "layer_too_large");
    }
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return InvalidArgument("tar entry without a usable name", "hostile_layer");
    std::string_view raw_path(raw);
    if (raw_path.size() > limits.max_path_bytes) {
      return InvalidArgument("tar entry name longer than " + std::to_string(limits.max_path_bytes) + " bytes",
                             "hostile_layer");
    }
    TarEntry entry;
    VOUCH_ASSIGN_OR_RETURN(entry.path, NormalizeEntryPath(raw_path));
    entry.mode = static_cast<uint32_t>(archive_entry_perm(e)) & 07777u;
    entry.uid = archive_entry_uid(e);
    entry.gid = archive_entry_gid(e);
    const char* hard = archive_entry_hardlink(e);
    const mode_t ft = archive_entry_filetype(e);
    if (hard != nullptr) {
      entry.type = TarEntry::Type::kHardlink;
      auto target = NormalizeEntryPath(hard);
      if (!target.ok()) return target.status().WithContext("hard link " + entry.path);
      if (target->empty()) return InvalidArgument("hard link " + entry.path + " points at the root", "hostile_layer");
      entry.link_target = *target;
    } else if (ft == AE_IFREG) {
      entry.type = TarEntry::Type::kFile;
      if (archive_entry_size_is_set(e) == 0 || archive_entry_size(e) < 0) {
        return InvalidArgument("tar entry " + entry.path + " has no size", "hostile_layer");
      }
      entry.size = static_cast<uint64_t>(archive_entry_size(e));
      if (entry.size > limits.max_entry_bytes) {
        return InvalidArgument("tar entry " + entry.path + " is " + std::to_string(entry.size) +
                                   " bytes, more than the limit " + std::to_string(limits.max_entry_bytes),
                               "layer_too_large");
      }
      if (entry.size > limits.max_total_bytes - total) return too_much();
      total += entry.size;
    } else if (ft == AE_IFDIR) {
      entry.type = TarEntry::Type::kDir;
    } else if (ft == AE_IFLNK) {
      entry.type = TarEntry::Type::kSymlink;
      const char* t = archive_entry_symlink(e);
      if (t == nullptr || *t == '\0') return InvalidArgument("symlink " + entry.path + " has no target", "hostile_layer");
      entry.link_target = t;
      if (entry.link_target.size() > limits.max_path_bytes) {
        return InvalidArgument("symlink " + entry.path + " target too long", "hostile_layer");
      }
      auto resolved = ResolveSymlink(entry.path, entry.link_target);
      if (!resolved.ok()) return resolved.status();
    } else if (ft == AE_IFIFO) {
      entry.type = TarEntry::Type::kFifo;
    } else if (ft == AE_IFCHR || ft == AE_IFBLK) {
      return InvalidArgument("tar entry " + entry.path + " is a device node; images may not carry devices",
                             "hostile_layer");
    } else {
      return InvalidArgument("tar entry " + entry.path + " has unsupported type " + std::to_string(ft),
                             "hostile_layer");
    }
    if (entry.path.empty() && entry.type != TarEntry::Type::kDir) {
      return InvalidArgument("tar entry for the root is not a directory", "hostile_layer");
    }
    VOUCH_RETURN_IF_ERROR(fn(entry, data));
    // Drain what the callback did not read so truncation is always noticed.
    if (entry.type == TarEntry::Type::kFile) {
      if (archive_read_data_skip(a) != ARCHIVE_OK) return ArchiveError(a, "reading " + entry.path);
    }
  }
  return Status::Ok();
}

// Decompresses gzip, zstd or nothing; `raw`: hands out the decompressed bytes, else parses tar.
ArchiveReadPtr NewReader(bool raw = false) {
  ArchiveReadPtr a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_none(a.get());
  if (raw) {
    archive_read_support_format_raw(a.get());
  } else {
    archive_read_support_format_tar(a.get());
  }
  return a;
}

}  // namespace

Result<std::string> NormalizeEntryPath(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos) return InvalidArgument("tar entry name holds a NUL byte", "hostile_layer");
  if (!raw.empty() && raw.front() == '/') {
    return InvalidArgument("tar entry \"" + std::string(raw.substr(0, 200)) + "\" has an absolute path",
                           "hostile_layer");
  }
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view part = raw.substr(i, j - i);
    if (part == "..") {
      return InvalidArgument("tar entry \"" + std::string(raw.substr(0, 200)) + "\" contains \"..\"", "hostile_layer");
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out.append(part);
    }
    i = j + 1;
  }
  return out;
}

Result<std::string> ResolveSymlink(std::string_view link_path, std::string_view target) {
  std::vector<std::string_view> stack;
  if (target.empty() || target.front() != '/') {
    // Relative: start in the link's directory.
    std::string_view dir = link_path;
    size_t slash = dir.rfind('/');
    dir = slash == std::string_view::npos ? std::string_view() : dir.substr(0, slash);
    size_t i = 0;
    while (!dir.empty() && i <= dir.size()) {
      size_t j = dir.find('/', i);
      if (j == std::string_view::npos) j = dir.size();
      if (j > i) stack.push_back(dir.substr(i, j - i));
      i = j + 1;
    }
  }
  size_t i = 0;
  while (i <= target.size()) {
    size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    std::string_view part = target.substr(i, j - i);
    if (part == "..") {
      if (stack.empty()) {
        return InvalidArgument("symlink " + std::string(link_path) + " -> " + std::string(target.substr(0, 200)) +
                                   " escapes the image root",
                               "hostile_layer");
      }
      stack.pop_back();
    } else if (!part.empty() && part != ".") {
      stack.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (std::string_view p : stack) {
    if (!out.empty()) out += '/';
    out.append(p);
  }
  return out;
}

namespace {

// SHA-256 of a stream on a second thread, so that hashing the diff_id overlaps with parsing
// (and hashing the files) on the calling thread. The caller fills the buffers in a ring of
// kSlots and submits them in order; a buffer is handed out again only after it was hashed.
class BackgroundSha256 {
 public:
  static constexpr size_t kSlots = 4;
  static constexpr size_t kSlotBytes = 1 << 20;

  BackgroundSha256() : slots_(kSlots, std::vector<uint8_t>(kSlotBytes)), sizes_(kSlots, 0), thread_([this] { Run(); }) {}
  ~BackgroundSha256() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  BackgroundSha256(const BackgroundSha256&) = delete;
  BackgroundSha256& operator=(const BackgroundSha256&) = delete;

  // The next buffer to fill (waits while the hasher still needs it).
  std::span<uint8_t> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return submitted_ - hashed_ < kSlots; });
    return slots_[submitted_ % kSlots];
  }
  // The first n bytes of the buffer Next() returned are part of the stream.
  void Submit(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[submitted_ % kSlots] = n;
      ++submitted_;
    }
    cv_.notify_all();
  }
  crypto::Sha256Digest Finish() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return hashed_ == submitted_; });
    return hasher_.Finish();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || hashed_ < submitted_; });
      if (hashed_ == submitted_) return;  // stopping, nothing left
      const size_t slot = hashed_ % kSlots;
      const size_t n = sizes_[slot];
      lock.unlock();
      hasher_.Update(std::span<const uint8_t>(slots_[slot].data(), n));
      lock.lock();
      ++hashed_;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<uint8_t>> slots_;
  std::vector<size_t> sizes_;
  uint64_t submitted_ = 0;  // guarded by mu_
  uint64_t hashed_ = 0;     // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  crypto::Sha256Hasher hasher_;  // the hashing thread's, until Finish
  std::thread thread_;           // last: starts after the members above exist
};

// The layer stream decompressed once by `outer` (libarchive's raw format behind the gzip/zstd
// filters) and handed to an inner tar reader through a read callback, which also submits every
// byte it hands over for hashing: the parse and the diff_id share one decompression.
struct HashingSource {
  archive* outer = nullptr;
  const TarLimits* limits = nullptr;
  Status stop;  // what TarLimits::on_progress answered when it stopped the read
  BackgroundSha256 hash;
  uint64_t bytes = 0;
  bool at_end = false;
  std::string error;  // the outer reader's message: the inner one only sees a failed callback
};

la_ssize_t ReadDecompressed(archive* /*inner*/, void* user, const void** out) {
  auto* s = static_cast<HashingSource*>(user);
  if (s->at_end) return 0;
  std::span<uint8_t> buf = s->hash.Next();
  la_ssize_t n = archive_read_data(s->outer, buf.data(), buf.size());
  if (n < 0) {
    const char* msg = archive_error_string(s->outer);
    s->error = msg ? msg : "unknown libarchive error";
    return ARCHIVE_FATAL;
  }
  if (n == 0) s->at_end = true;
  s->hash.Submit(static_cast<size_t>(n));
  s->bytes += static_cast<uint64_t>(n);
  *out = buf.data();
  if (s->limits != nullptr && s->limits->on_progress) {
    const la_int64_t consumed = archive_filter_bytes(s->outer, -1);
    Status st = s->limits->on_progress(consumed > 0 ? static_cast<uint64_t>(consumed) : 0);
    if (!st.ok()) {
      s->stop = std::move(st);
      return ARCHIVE_FATAL;
    }
  }
  return n;
}

// `outer` is open; parses its decompressed content as tar and stores the diff_id.
Status ReadEntriesHashing(archive* outer, const TarLimits& limits, const TarEntryFn& fn, std::string* diff_id) {
  HashingSource src;
  src.outer = outer;
  src.limits = &limits;
  archive_entry* raw_entry = nullptr;
  int r = archive_read_next_header(outer, &raw_entry);
  if (r == ARCHIVE_EOF) {
    src.at_end = true;  // an empty stream: the tar reader below says what it thinks of that
  } else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
    return ArchiveError(outer, "reading layer stream");
  }
  ArchiveReadPtr inner(archive_read_new());
  archive_read_support_filter_none(inner.get());
  archive_read_support_format_tar(inner.get());
  if (archive_read_open(inner.get(), &src, nullptr, ReadDecompressed, nullptr) != ARCHIVE_OK) {
    if (!src.stop.ok()) return src.stop;
    if (!src.error.empty()) return DataLoss("decompressing layer: " + src.error, "corrupt_layer");
    return ArchiveError(inner.get(), "opening tar stream");
  }
  Status st = ReadEntries(inner.get(), limits, fn);
  if (!src.stop.ok()) return src.stop;
  if (!src.error.empty()) return DataLoss("decompressing layer: " + src.error, "corrupt_layer");
  VOUCH_RETURN_IF_ERROR(st);
  // What the tar reader did not consume (end-of-archive blocks, record padding) is part of the
  // stream and of its digest; it is counted from the reader's position, just past the end marker.
  const la_int64_t consumed = archive_filter_bytes(inner.get(), 0);
  const uint64_t tar_end = consumed > 0 ? static_cast<uint64_t>(consumed) : 0;
  while (!src.at_end) {
    const void* unused = nullptr;
    if (ReadDecompressed(nullptr, &src, &unused) < 0) {
      if (!src.stop.ok()) return src.stop;
      return DataLoss("decompressing layer: " + src.error, "corrupt_layer");
    }
    if (src.bytes > tar_end && src.bytes - tar_end > kMaxTrailingBytes) {
      return InvalidArgument("layer has more than " + std::to_string(kMaxTrailingBytes) +
                                 " bytes after the end of its tar archive",
                             "hostile_layer");
    }
  }
  *diff_id = "sha256:" + HexEncode(src.hash.Finish());
  return Status::Ok();
}

}  // namespace

Status ReadTarFile(const std::string& path, const TarLimits& limits, const TarEntryFn& fn, std::string* diff_id) {
  ArchiveReadPtr a = NewReader(/*raw=*/diff_id != nullptr);
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "opening " + path);
  }
  if (diff_id != nullptr) return ReadEntriesHashing(a.get(), limits, fn, diff_id);
  return ReadEntries(a.get(), limits, fn);
}

Status ReadTarMemory(std::string_view bytes, const TarLimits& limits, const TarEntryFn& fn, std::string* diff_id) {
  ArchiveReadPtr a = NewReader(/*raw=*/diff_id != nullptr);
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "opening tar stream");
  }
  if (diff_id != nullptr) return ReadEntriesHashing(a.get(), limits, fn, diff_id);
  return ReadEntries(a.get(), limits, fn);
}

// --- writing ---------------------------------------------------------------------------------

long TarWriterAppend(void* /*a*/, void* user, const void* buf, size_t n) {  // NOLINT
  auto* w = static_cast<TarWriter*>(user);
  w->memory_.append(static_cast<const char*>(buf), n);
  return static_cast<long>(n);
}

namespace {
la_ssize_t WriteToMemory(archive* a, void* user, const void* buf, size_t n) {
  return TarWriterAppend(a, user, buf, n);
}
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

EntryPtr NewEntry(std::string_view path, mode_t type, uint32_t mode, int64_t size) {
  EntryPtr e(archive_entry_new());
  archive_entry_copy_pathname(e.get(), std::string(path).c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), mode & 07777u);
  archive_entry_set_size(e.get(), size);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  return e;
}
}  // namespace

Result<std::unique_ptr<TarWriter>> TarWriter::Create(const std::string& path, Compression compression) {
  std::unique_ptr<TarWriter> w(new TarWriter());
  archive* a = archive_write_new();
  w->archive_ = a;
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  switch (compression) {
    case Compression::kNone:
      archive_write_add_filter_none(a);
      break;
    case Compression::kGzip:
      archive_write_add_filter_gzip(a);
      // No name or timestamp in the gzip header: the same content gives the same digest.
      archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
      break;
    case Compression::kZstd:
      archive_write_add_filter_zstd(a);
      break;
  }
  int r = path.empty() ? archive_write_open(a, w.get(), nullptr, WriteToMemory, nullptr)
                       : archive_write_open_filename(a, path.c_str());
  if (r != ARCHIVE_OK) return ArchiveError(a, "creating tar " + path);
  return w;
}

TarWriter::~TarWriter() {
  if (archive_ != nullptr) archive_write_free(A(archive_));
}

Status TarWriter::AddDirectory(std::string_view path, uint32_t mode) {
  EntryPtr e = NewEntry(path, AE_IFDIR, mode, 0);
  if (archive_write_header(A(archive_), e.get()) != ARCHIVE_OK) return ArchiveError(A(archive_), "writing tar");
  return Status::Ok();
}

Status TarWriter::AddFile(std::string_view path, uint32_t mode, std::string_view content) {
  EntryPtr e = NewEntry(path, AE_IFREG, mode, static_cast<int64_t>(content.size()));
  if (archive_write_header(A(archive_), e.get()) != ARCHIVE_OK) return ArchiveError(A(archive_), "writing tar");
  if (!content.empty() && archive_write_data(A(archive_), content.data(), content.size()) !=
                              static_cast<la_ssize_t>(content.size())) {
    return ArchiveError(A(archive_), "writing tar data");
  }
  return Status::Ok();
}

Status TarWriter::AddFileFromDisk(std::string_view path, uint32_t mode, const std::string& source) {
  int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable("opening " + source + ": " + std::strerror(errno), "io_error");
  off_t size = ::lseek(fd, 0, SEEK_END);
  ::lseek(fd, 0, SEEK_SET);
  EntryPtr e = NewEntry(path, AE_IFREG, mode, size);
  Status st;
  if (archive_write_header(A(archive_), e.get()) != ARCHIVE_OK) st = ArchiveError(A(archive_), "writing tar");
  std::vector<char> buf(1 << 20);
  off_t done = 0;
  while (st.ok() && done < size) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = Unavailable("reading " + source + " failed or it shrank", "io_error");
      break;
    }
    if (archive_write_data(A(archive_), buf.data(), static_cast<size_t>(n)) != n) {
      st = ArchiveError(A(archive_), "writing tar data");
    }
    done += n;
  }
  ::close(fd);
  return st;
}

Status TarWriter::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  if (archive_write_close(A(archive_)) != ARCHIVE_OK) return ArchiveError(A(archive_), "finishing tar");
  return Status::Ok();
}

}  // namespace vouch::oci
