// libarchive entry points that load libarchive.so.13 on first use (see README.md).
#include <archive.h>
#include <archive_entry.h>

#include "base/lazy_library.h"

VOUCH_LAZY_LIBRARY(Library, "libarchive.so.13")

#define A_FN(ret, name, fail, params, args) VOUCH_LAZY_FN(Library, ret, name, fail, params, args)
#define A_VOID_FN(name, params, args) VOUCH_LAZY_VOID_FN(Library, name, params, args)

using entry = struct archive_entry;
using arch = struct archive;

// Objects.
A_FN(arch*, archive_read_new, nullptr, (void), ())
A_FN(arch*, archive_write_new, nullptr, (void), ())
A_FN(int, archive_read_free, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_free, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_close, ARCHIVE_FATAL, (arch * a), (a))
A_FN(const char*, archive_error_string, "libarchive unavailable", (arch * a), (a))

// Reading.
A_FN(int, archive_read_support_filter_gzip, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_read_support_filter_none, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_read_support_filter_zstd, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_read_support_format_tar, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_read_support_format_raw, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_read_open_filename, ARCHIVE_FATAL, (arch * a, const char* f, size_t block), (a, f, block))
A_FN(int, archive_read_open, ARCHIVE_FATAL,
     (arch * a, void* client, archive_open_callback* o, archive_read_callback* r, archive_close_callback* c),
     (a, client, o, r, c))
A_FN(int, archive_read_open_memory, ARCHIVE_FATAL, (arch * a, const void* buf, size_t size), (a, buf, size))
A_FN(int, archive_read_next_header, ARCHIVE_FATAL, (arch * a, entry** e), (a, e))
A_FN(la_ssize_t, archive_read_data, -1, (arch * a, void* buf, size_t size), (a, buf, size))
A_FN(la_int64_t, archive_filter_bytes, -1, (arch * a, int n), (a, n))
A_FN(int, archive_read_data_skip, ARCHIVE_FATAL, (arch * a), (a))

// Writing.
A_FN(int, archive_write_add_filter_gzip, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_add_filter_none, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_add_filter_zstd, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_set_filter_option, ARCHIVE_FATAL, (arch * a, const char* m, const char* o, const char* v),
     (a, m, o, v))
A_FN(int, archive_write_set_format_pax_restricted, ARCHIVE_FATAL, (arch * a), (a))
A_FN(int, archive_write_set_bytes_in_last_block, ARCHIVE_FATAL, (arch * a, int n), (a, n))
A_FN(int, archive_write_open, ARCHIVE_FATAL,
     (arch * a, void* client, archive_open_callback* o, archive_write_callback* w, archive_close_callback* c),
     (a, client, o, w, c))
A_FN(int, archive_write_open_filename, ARCHIVE_FATAL, (arch * a, const char* f), (a, f))
A_FN(int, archive_write_header, ARCHIVE_FATAL, (arch * a, entry* e), (a, e))
A_FN(la_ssize_t, archive_write_data, -1, (arch * a, const void* buf, size_t size), (a, buf, size))

// Entries.
A_FN(entry*, archive_entry_new, nullptr, (void), ())
A_VOID_FN(archive_entry_free, (entry * e), (e))
A_FN(const char*, archive_entry_pathname, nullptr, (entry * e), (e))
A_FN(const char*, archive_entry_hardlink, nullptr, (entry * e), (e))
A_FN(const char*, archive_entry_symlink, nullptr, (entry * e), (e))
A_FN(__LA_MODE_T, archive_entry_filetype, 0, (entry * e), (e))
A_FN(__LA_MODE_T, archive_entry_perm, 0, (entry * e), (e))
A_FN(la_int64_t, archive_entry_uid, 0, (entry * e), (e))
A_FN(la_int64_t, archive_entry_gid, 0, (entry * e), (e))
A_FN(la_int64_t, archive_entry_size, -1, (entry * e), (e))
A_FN(int, archive_entry_size_is_set, 0, (entry * e), (e))
A_VOID_FN(archive_entry_copy_pathname, (entry * e, const char* p), (e, p))
A_VOID_FN(archive_entry_set_pathname, (entry * e, const char* p), (e, p))
A_VOID_FN(archive_entry_set_hardlink, (entry * e, const char* p), (e, p))
A_VOID_FN(archive_entry_set_symlink, (entry * e, const char* p), (e, p))
A_VOID_FN(archive_entry_set_filetype, (entry * e, unsigned int t), (e, t))
A_VOID_FN(archive_entry_set_perm, (entry * e, __LA_MODE_T m), (e, m))
A_VOID_FN(archive_entry_set_uid, (entry * e, la_int64_t v), (e, v))
A_VOID_FN(archive_entry_set_gid, (entry * e, la_int64_t v), (e, v))
A_VOID_FN(archive_entry_set_size, (entry * e, la_int64_t v), (e, v))
A_VOID_FN(archive_entry_set_mtime, (entry * e, time_t t, long ns), (e, t, ns))

#undef A_FN
#undef A_VOID_FN
