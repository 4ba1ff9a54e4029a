// DCAP verification throughput: a full SGX quote v3 verification against loaded collateral
// (DcapVerifier: collateral chains and signatures are checked once at load; each quote then costs
// its own parse, PCK-chain cache lookup, QE report signature, report-data binding, QE identity,
// quote signature and TCB matching), next to the floor of two raw P-256 ECDSA verifies.
//
//   build/<dir>/bench/bench_attest --benchmark_counters_tabular=true
// Figures and commands: BENCHMARKS.md, "## Attestation".
#include <benchmark/benchmark.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "base/clock.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"

namespace {

std::string Dir(const std::string& rel) { return std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel; }

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Fixture {
  std::vector<uint8_t> quote;
  vouch::TimePoint at;
  std::unique_ptr<vouch::attest::DcapVerifier> verifier;
  // Floor inputs.
  vouch::crypto::EvpPkeyPtr pck_key;
  vouch::crypto::EvpPkeyPtr att_key;
  vouch::evidence::DcapQuote parsed;

  Fixture(const char* folder, const char* at_text) {
    quote = ReadBytes(Dir(folder) + "/quote.dat");
    at = *vouch::ParseRfc3339(at_text);
    auto c = vouch::attest::DcapCollateral::LoadDir(Dir(folder));
    verifier = std::move(*vouch::attest::DcapVerifier::Create(*c));
    parsed = *vouch::evidence::ParseDcapQuote(quote);
    auto certs = vouch::crypto::CertsFromPem(std::string(parsed.cert_data.data.begin(), parsed.cert_data.data.end()));
    EVP_PKEY* k = X509_get0_pubkey((*certs)[0].get());
    EVP_PKEY_up_ref(k);
    pck_key.reset(k);
    att_key = std::move(*vouch::crypto::EcPublicKeyFromRaw(parsed.attestation_key, NID_X9_62_prime256v1));
  }
};

Fixture& Sgx() {
  static Fixture f("sgx-dcap/dcap-rs-icx-2025-02", "2025-02-13T04:00:32Z");
  return f;
}
Fixture& Tdx() {
  static Fixture f("tdx/dcap-rs-spr-v4-2025-02", "2025-02-13T04:00:32Z");
  return f;
}

void Verify(benchmark::State& state, Fixture& f) {
  for (auto _ : state) {
    auto v = f.verifier->Verify(f.quote, f.at);
    if (!v.genuine) state.SkipWithError("quote not genuine");
    benchmark::DoNotOptimize(v);
  }
  state.counters["quotes/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_VerifySgxQuote(benchmark::State& state) { Verify(state, Sgx()); }
void BM_VerifyTdxQuote(benchmark::State& state) { Verify(state, Tdx()); }

// The floor: the two ECDSA P-256 verifies every quote needs (QE report by the PCK key, quote by
// the attestation key), with keys already decoded.
void BM_FloorTwoP256Verifies(benchmark::State& state) {
  Fixture& f = Sgx();
  for (auto _ : state) {
    bool a = vouch::crypto::VerifyEcdsaRaw(f.pck_key.get(), f.parsed.qe_report.raw, f.parsed.qe_report_signature);
    bool b = vouch::crypto::VerifyEcdsaRaw(f.att_key.get(), f.parsed.signed_data, f.parsed.signature);
    if (!a || !b) state.SkipWithError("floor signatures do not verify");
  }
  state.counters["quotes/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_LoadCollateralAndVerify(benchmark::State& state) {
  Fixture& f = Sgx();
  for (auto _ : state) {
    auto v = vouch::attest::VerifyDcapQuote(f.quote, Dir("sgx-dcap/dcap-rs-icx-2025-02"), f.at);
    if (!v.genuine) state.SkipWithError("quote not genuine");
  }
}

BENCHMARK(BM_VerifySgxQuote)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_FloorTwoP256Verifies)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_VerifyTdxQuote)->Threads(1)->UseRealTime();
BENCHMARK(BM_LoadCollateralAndVerify)->Threads(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
