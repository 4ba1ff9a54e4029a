#include "store/postgres_sql.h"

#include <cctype>

namespace vouch::store {
namespace {

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool EqualsUpper(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(word[i])) != upper[i]) return false;
  }
  return true;
}

}  // namespace

std::string TranslateSqlForPostgres(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int param = 0;
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      // Copy a quoted literal or identifier verbatim; a doubled quote is an escaped quote.
      size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      size_t end = j < sql.size() ? j + 1 : sql.size();
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      if (j == std::string_view::npos) j = sql.size();
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++param);
      ++i;
    } else if (IsWordChar(c)) {
      size_t j = i;
      while (j < sql.size() && IsWordChar(sql[j])) ++j;
      std::string_view word = sql.substr(i, j - i);
      if (EqualsUpper(word, "INTEGER")) {
        out += "BIGINT";
      } else if (EqualsUpper(word, "BLOB")) {
        out += "BYTEA";
      } else {
        out.append(word);
      }
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string PgTextArray(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string PgIntArray(const std::vector<int64_t>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(items[i]);
  }
  return out + "}";
}

}  // namespace vouch::store
