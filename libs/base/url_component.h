#pragma once
// Percent-encoding of one URL component, as JavaScript's encodeURIComponent: how Intel PCS and
// PCCS encode their *-Issuer-Chain response headers (PEM chains), and how vouchd and `vouch sim
// pcs` encode them for Intel's quote provider library.

#include <string>
#include <string_view>

namespace vouch {

// Keeps A-Z a-z 0-9 - _ . ! ~ * ' ( ) and encodes every other byte as %XX (upper-case hex).
std::string UrlEncodeComponent(std::string_view in);
// The inverse, lenient as a header reader must be: %XX (either case) becomes the byte; a '%' not
// followed by two hex digits, and '+', are kept as they are.
std::string UrlDecodeComponent(std::string_view in);

}  // namespace vouch
