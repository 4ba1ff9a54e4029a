#include "pki/names.h"

#include <algorithm>

namespace vouch::pki {
namespace {

constexpr size_t kMaxName = 253;   // RFC 1035 §2.3.4, without the trailing dot
constexpr size_t kMaxLabel = 63;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsLdhLabel(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabel || label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool EqualIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return Lower(x) == Lower(y); });
}

bool IsWildcard(std::string_view name) { return name.size() > 2 && name.substr(0, 2) == "*."; }

}  // namespace

bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsLdhLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string LowerDnsName(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = Lower(c);
  return out;
}

Result<std::string> NormalizeDnsName(std::string_view name, std::string_view reason) {
  if (!IsValidDnsName(name)) {
    return InvalidArgument("invalid DNS name '" + std::string(name.substr(0, 100)) + "'", std::string(reason));
  }
  return LowerDnsName(name);
}

bool DomainMatches(std::string_view name, std::string_view pattern) {
  if (EqualIgnoringCase(name, pattern)) return true;
  if (!IsWildcard(pattern) || IsWildcard(name)) return false;
  std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (name.size() <= suffix.size()) return false;
  std::string_view head = name.substr(0, name.size() - suffix.size());
  return EqualIgnoringCase(name.substr(head.size()), suffix) && head.find('.') == std::string_view::npos;
}

bool DomainAllowed(std::string_view name, std::span<const std::string> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return DomainMatches(name, a); });
}

bool DomainsOverlap(std::string_view a, std::string_view b) {
  return DomainMatches(a, b) || DomainMatches(b, a);
}

}  // namespace vouch::pki
