#include "client/table.h"

#include <algorithm>
#include <utility>

namespace vouch::client {

using json = nlohmann::json;

size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;  // count every byte that starts a code point
  }
  return n;
}

std::string Sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out.push_back('?');
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      out.push_back('?');  // a C1 control character (U+0080..U+009F), e.g. CSI
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string CellText(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      return "-";
    case json::value_t::string:
      return Sanitize(v.get_ref<const std::string&>());
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::array: {
      if (v.empty()) return "-";
      std::string out;
      for (const auto& e : v) {
        if (!out.empty()) out += ",";
        out += e.is_structured() ? Sanitize(e.dump()) : CellText(e);
      }
      return out;
    }
    default:
      return Sanitize(v.dump());
  }
}

TextTable::TextTable(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (auto& c : cells) c = Sanitize(c);
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render() const {
  std::vector<size_t> width(headers_.size(), 0);
  for (size_t i = 0; i < headers_.size(); ++i) width[i] = DisplayWidth(headers_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      l += cells[i];
      if (i + 1 < cells.size()) l.append(width[i] - DisplayWidth(cells[i]) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
  return out;
}

std::string RenderTable(const json& items, const std::vector<Column>& columns) {
  std::vector<std::string> headers;
  for (const auto& c : columns) headers.push_back(c.header);
  TextTable table(std::move(headers));
  if (items.is_array()) {
    for (const auto& item : items) {
      std::vector<std::string> cells;
      for (const auto& c : columns) {
        json v = nullptr;
        const json::json_pointer ptr(c.pointer);
        if (item.is_object() && item.contains(ptr)) v = item.at(ptr);
        cells.push_back(c.format ? c.format(v) : CellText(v));
      }
      table.AddRow(std::move(cells));
    }
  }
  return table.Render();
}

namespace {
void Flatten(const json& v, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      Flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
    return;
  }
  if (v.is_array() && !v.empty() && std::any_of(v.begin(), v.end(), [](const json& e) { return e.is_structured(); })) {
    for (size_t i = 0; i < v.size(); ++i) Flatten(v[i], prefix + "[" + std::to_string(i) + "]", out);
    return;
  }
  out.emplace_back(prefix, v.is_object() ? "-" : CellText(v));
}
}  // namespace

std::string RenderObject(const json& object) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (object.is_object()) {
    // Identity first (id, name, serial), then plain fields, then nested objects and lists of
    // objects, each group in key order.
    static const char* const kFirst[] = {"id", "name", "serial"};
    for (const char* key : kFirst) {
      if (object.contains(key)) Flatten(object[key], key, kv);
    }
    auto nested = [](const json& v) {
      return (v.is_object() && !v.empty()) ||
             (v.is_array() && std::any_of(v.begin(), v.end(), [](const json& e) { return e.is_structured(); }));
    };
    auto is_first = [](const std::string& k) { return k == "id" || k == "name" || k == "serial"; };
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (!is_first(it.key()) && !nested(it.value())) Flatten(it.value(), it.key(), kv);
    }
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (!is_first(it.key()) && nested(it.value())) Flatten(it.value(), it.key(), kv);
    }
  } else {
    Flatten(object, "", kv);
  }
  size_t width = 0;
  for (const auto& [k, v] : kv) width = std::max(width, DisplayWidth(k));
  std::string out;
  for (const auto& [k, v] : kv) {
    const std::string key = Sanitize(k);
    std::string l = key;
    l.append(width - DisplayWidth(key) + 2, ' ');
    l += v;
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  }
  return out;
}

}  // namespace vouch::client
