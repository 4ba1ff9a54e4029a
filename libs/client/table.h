#pragma once

// Plain-text output for the CLI: aligned tables and key/value views of server JSON.
//
// Cells are sanitised (control characters and escape sequences from server data are replaced by
// '?', so a hostile name cannot drive the terminal) and measured in UTF-8 code points. Columns are
// separated by two spaces; the last column is not padded, so no line has trailing blanks.
// Pure functions; thread-safe.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vouch::client {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers);

  // Missing cells print as empty; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Header line then one line per row, each ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of `s` in code points (combining and wide characters count as one).
size_t DisplayWidth(std::string_view s);

// Replaces C0/C1 control characters (including ESC, CR, LF, TAB) by '?'.
std::string Sanitize(std::string_view s);

// One JSON value as a cell: null → "-", strings as is, booleans "true"/"false", numbers,
// arrays of scalars comma-separated ("-" when empty), other values as compact JSON.
std::string CellText(const nlohmann::json& v);

// A table column: `pointer` is a JSON pointer into each item ("/policy/min_tcb"); `format`, when
// set, turns the value found there (null when absent) into the cell text.
struct Column {
  std::string header;
  std::string pointer;
  std::function<std::string(const nlohmann::json&)> format = nullptr;
};

// Renders an array of objects with the given columns.
std::string RenderTable(const nlohmann::json& items, const std::vector<Column>& columns);

// Renders one object as aligned "key  value" lines; nested objects flatten to dotted keys
// ("policy.min_tcb"); arrays of objects print one line per element ("approvals[0].user").
// Order: id, name and serial first, then plain fields, then nested ones, each group sorted by key.
std::string RenderObject(const nlohmann::json& object);

}  // namespace vouch::client
