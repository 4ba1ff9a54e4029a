// libFuzzer target for pki::ParseCsr: arbitrary bytes (PEM or DER) must never crash, leak or
// trip a sanitizer, and an accepted CSR must be self-consistent.
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pki/csr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // The agent's policy (no signature check, no key object): accepts at least what the full
  // check accepts, and the same request.
  vouch::pki::CsrPolicy no_verify;
  no_verify.verify_signature = false;
  auto loose = vouch::pki::ParseCsr(in, no_verify);
  auto csr = vouch::pki::ParseCsr(in);
  if (csr.ok() && (!loose.ok() || loose->spki_der != csr->spki_der || loose->dns_names != csr->dns_names)) {
    __builtin_trap();
  }
  if (!csr.ok()) return 0;
  // Invariant: the SubjectPublicKeyInfo of an accepted CSR is one OpenSSL decodes to a key of
  // the reported type and size.
  const unsigned char* p = csr->spki_der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(csr->spki_der.size()));
  if (key == nullptr || p != csr->spki_der.data() + csr->spki_der.size()) __builtin_trap();
  int id = EVP_PKEY_get_base_id(key);
  bool rsa = csr->key_type == vouch::pki::PublicKeyType::kRsa;
  if ((rsa && id != EVP_PKEY_RSA) || (!rsa && id != EVP_PKEY_EC)) __builtin_trap();
  if (EVP_PKEY_get_bits(key) != csr->key_bits) __builtin_trap();
  EVP_PKEY_free(key);
  return 0;
}
