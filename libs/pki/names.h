#pragma once

// DNS names in certificates and in app allow-lists: the one syntax check and the one matching
// rule that every part of vouch uses (the manager's app domains, workload issuance, the CA's
// subjectAltName encoder).
//
// DNS names are case-insensitive (RFC 4343). vouch keeps them in lower case: names given to the
// API are normalised with NormalizeDnsName before they are checked, stored or compared, and the
// names a CSR requests are lower-cased before issuance, so certificates carry lower-case names.

#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch::pki {

// RFC 1123 host name: 1-253 characters, dot-separated labels of 1-63 letters (either case),
// digits and '-', not starting or ending with '-'; optionally "*." followed by such a name (a
// wildcard standing for exactly one label). No trailing dot, no empty label, no IDN U-labels.
bool IsValidDnsName(std::string_view name);

// ASCII lower case of `name` (no validation).
std::string LowerDnsName(std::string_view name);

// LowerDnsName(name) if it is valid, else kInvalidArgument with reason `reason`.
Result<std::string> NormalizeDnsName(std::string_view name, std::string_view reason = "invalid_domain");

// True when `name` (a valid DNS name, not a wildcard) is allowed by `pattern`: equal (ignoring
// case), or `pattern` is "*.<suffix>" and `name` is one label followed by ".<suffix>"
// ("*.example.com" allows "a.example.com", not "example.com" nor "a.b.example.com").
bool DomainMatches(std::string_view name, std::string_view pattern);

// True when any of `allowed` allows `name` (DomainMatches).
bool DomainAllowed(std::string_view name, std::span<const std::string> allowed);

// True when two allow-list entries can certify a common name: equal (ignoring case), or one is a
// wildcard that matches the other ("*.example.com" and "a.example.com"). Two different wildcards
// never overlap, since each stands for exactly one label.
bool DomainsOverlap(std::string_view a, std::string_view b);

}  // namespace vouch::pki
