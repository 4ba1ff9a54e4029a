// Issuance benchmark (issue 2, "Benchmark"): the in-process issuance core of vouchd.
//
//   bench_issuance [google-benchmark flags] [--pipeline_seconds=N] [--db=PATH]
//                  [--synchronous=FULL|NORMAL] [--linger_us=N] [--skip_pipeline | --pipeline_only]
//                  [--instructions=N]
//
// Part 1 (Google Benchmark): the floor (one P-256 sign + one P-256 verify), the pieces of the
// fast path (pki::ParseCsr, SPKI byte copy), the "obvious" OpenSSL code (X509_REQ decode +
// X509_REQ_verify + X509_set_pubkey + X509V3_EXT_conf_nid + PEM_write), and the issuance core
// without storage, on 1 and 2 threads.
// Part 2 (plain timing): the durable pipeline. Issuing threads parse the CSR, check its
// signature, build, sign and encode the certificate, then hand the record to a committer thread
// that writes batches to SQLite (WAL, synchronous=FULL: every COMMIT fsyncs the WAL) in one
// transaction each. A certificate counts as issued when its batch has committed, i.e. when the
// answer could be sent. Reported: certificates/s on 1 and 2 issuing threads, CPU time per
// certificate (all threads, committer included), commit latency.
#include <benchmark/benchmark.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "pki/ca.h"
#include "pki/certificate.h"
#include "pki/csr.h"
#include "testing/csr.h"

namespace {

using namespace std::chrono_literals;
using vouch::pki::CaSigner;
using vouch::pki::CertificateProfile;
using vouch::pki::IssueRequest;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_issuance: %s\n", what.c_str());
  std::exit(2);
}

template <typename T>
T Must(vouch::Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

// ---------------------------------------------------------------------------------------------
// Shared fixture: one zone CA (P-256) and a pool of CSRs from distinct P-256 keys.

struct Fixture {
  vouch::pki::CaMaterial ca;
  std::unique_ptr<CaSigner> signer;
  std::vector<std::string> csr_pems;
  vouch::pki::Measurement measurement;
};

const Fixture& F() {
  static const Fixture* f = [] {
    auto* fx = new Fixture();
    vouch::pki::RootCaOptions options;
    options.common_name = "zone prod root CA";
    options.organization = "vouch bench";
    fx->ca = Must(vouch::pki::CreateRootCa(options), "CreateRootCa");
    fx->signer = Must(CaSigner::Create(fx->ca), "CaSigner");
    for (int i = 0; i < 256; ++i) {
      auto key = Must(vouch::crypto::GenerateP256(), "key");
      const std::string cn = "web-" + std::to_string(i);
      fx->csr_pems.push_back(vouch::test::CsrPemFor(key.get(), {cn + ".prod.example"}, cn));
    }
    fx->measurement.platform = "sgx";
    fx->measurement.mrenclave.assign(32, 0x5a);
    fx->measurement.mrsigner.assign(32, 0xa5);
    fx->measurement.isvprodid = 1;
    fx->measurement.isvsvn = 3;
    return fx;
  }();
  return *f;
}

// ---------------------------------------------------------------------------------------------
// The fast path, as vouchd runs it.

struct Issued {
  vouch::pki::IssuedCertificate cert;
  std::string subject;
  std::string sans;
};

Issued IssueFast(const std::string& csr_pem) {
  const Fixture& f = F();
  auto csr = Must(vouch::pki::ParseCsr(csr_pem), "ParseCsr");
  IssueRequest req = IssueRequest::ForCsr(csr, CertificateProfile::kWorkload);
  req.common_name = csr.common_name;
  req.dns_names = csr.dns_names;
  req.uris = {vouch::pki::SpiffeId("prod", "web")};
  req.measurement = f.measurement;
  req.validity = 24h;
  Issued out;
  out.cert = Must(vouch::pki::IssueCertificate(*f.signer, req), "IssueCertificate");
  out.subject = "CN=" + csr.common_name;
  out.sans = "DNS:" + csr.dns_names.front() + ",URI:" + req.uris.front();
  return out;
}

// ---------------------------------------------------------------------------------------------
// The obvious OpenSSL code: decode the CSR with PEM_read_bio_X509_REQ, take its EVP_PKEY,
// X509_REQ_verify, X509_set_pubkey, extensions from config strings, X509_sign, PEM_write.

void AddConfExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) Die("X509V3_EXT_conf_nid " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Issued IssueObvious(const std::string& csr_pem) {
  const Fixture& f = F();
  vouch::crypto::BioPtr in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  vouch::crypto::X509ReqPtr req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (!req) Die("PEM_read_bio_X509_REQ");
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr || X509_REQ_verify(req.get(), pkey) != 1) Die("X509_REQ_verify");
  std::string cn;
  {
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    cn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)), static_cast<size_t>(ASN1_STRING_length(d)));
  }
  vouch::crypto::X509Ptr x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  vouch::crypto::BnPtr bn(BN_new());
  BN_rand(bn.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get()));
  X509_set_issuer_name(x.get(), X509_get_subject_name(f.signer->cert()));
  X509_NAME_add_entry_by_NID(X509_get_subject_name(x.get()), NID_commonName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()), -1, 0);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
  if (X509_set_pubkey(x.get(), pkey) != 1) Die("X509_set_pubkey");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, f.signer->cert(), x.get(), nullptr, nullptr, 0);
  std::string dns = cn + ".prod.example";
  AddConfExt(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  AddConfExt(x.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  AddConfExt(x.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
  AddConfExt(x.get(), &ctx, NID_subject_key_identifier, "hash");
  AddConfExt(x.get(), &ctx, NID_authority_key_identifier, "keyid");
  AddConfExt(x.get(), &ctx, NID_subject_alt_name, "DNS:" + dns + ",URI:spiffe://prod/app/web");
  std::vector<uint8_t> m = vouch::pki::EncodeMeasurement(f.measurement);
  vouch::crypto::Asn1ObjectPtr oid(OBJ_txt2obj(std::string(vouch::pki::kMeasurementExtensionOid).c_str(), 1));
  vouch::crypto::Asn1OctetStringPtr os(ASN1_OCTET_STRING_new());
  ASN1_OCTET_STRING_set(os.get(), m.data(), static_cast<int>(m.size()));
  X509_EXTENSION* me = X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, os.get());
  X509_add_ext(x.get(), me, -1);
  X509_EXTENSION_free(me);
  if (!f.signer->Sign(x.get()).ok()) Die("sign");
  Issued out;
  unsigned char* der = nullptr;
  int len = i2d_X509(x.get(), &der);
  out.cert.der.assign(der, der + len);
  OPENSSL_free(der);
  vouch::crypto::BioPtr pem(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(pem.get(), x.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(pem.get(), &data);
  out.cert.pem.assign(data, static_cast<size_t>(n));
  char* hex = BN_bn2hex(bn.get());
  out.cert.serial_hex = hex;
  OPENSSL_free(hex);
  out.cert.not_before = std::chrono::system_clock::now() - 60s;
  out.cert.not_after = out.cert.not_before + 24h;
  out.subject = "CN=" + cn;
  out.sans = "DNS:" + dns + ",URI:spiffe://prod/app/web";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 1: Google Benchmark.

// The floor, as a real signer/verifier calls OpenSSL: EVP_DigestSign + EVP_DigestVerify with
// SHA-256 over certificate-sized messages, one fresh context each.
void BM_Floor_P256SignPlusVerify(benchmark::State& state) {
  auto key = Must(vouch::crypto::GenerateP256(), "key");
  std::vector<uint8_t> tbs(420), info(230);
  RAND_bytes(tbs.data(), static_cast<int>(tbs.size()));
  RAND_bytes(info.data(), static_cast<int>(info.size()));
  unsigned char sig[80];
  size_t sig_len = sizeof(sig);
  {
    vouch::crypto::EvpMdCtxPtr s(EVP_MD_CTX_new());
    EVP_DigestSignInit(s.get(), nullptr, EVP_sha256(), nullptr, key.get());
    EVP_DigestSign(s.get(), sig, &sig_len, info.data(), info.size());
  }
  for (auto _ : state) {
    vouch::crypto::EvpMdCtxPtr v(EVP_MD_CTX_new());
    if (EVP_DigestVerifyInit(v.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestVerify(v.get(), sig, sig_len, info.data(), info.size()) != 1) {
      state.SkipWithError("verify");
      break;
    }
    vouch::crypto::EvpMdCtxPtr s(EVP_MD_CTX_new());
    unsigned char out[80];
    size_t out_len = sizeof(out);
    if (EVP_DigestSignInit(s.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(s.get(), out, &out_len, tbs.data(), tbs.size()) != 1) {
      state.SkipWithError("sign");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Floor_P256SignPlusVerify)->MinTime(2.0);

// The strictest floor: the raw primitives on a precomputed digest with reused contexts
// (what `openssl speed ecdsap256` measures).
void BM_Floor_P256SignPlusVerifyPrehashed(benchmark::State& state) {
  auto key = Must(vouch::crypto::GenerateP256(), "key");
  unsigned char digest[32];
  RAND_bytes(digest, sizeof(digest));
  vouch::crypto::EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  vouch::crypto::EvpPkeyCtxPtr vctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  EVP_PKEY_sign_init(sctx.get());
  EVP_PKEY_verify_init(vctx.get());
  unsigned char sig[80];
  size_t sig_len = sizeof(sig);
  EVP_PKEY_sign(sctx.get(), sig, &sig_len, digest, sizeof(digest));
  for (auto _ : state) {
    if (EVP_PKEY_verify(vctx.get(), sig, sig_len, digest, sizeof(digest)) != 1) {
      state.SkipWithError("verify");
      break;
    }
    unsigned char out[80];
    size_t out_len = sizeof(out);
    if (EVP_PKEY_sign(sctx.get(), out, &out_len, digest, sizeof(digest)) != 1) {
      state.SkipWithError("sign");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Floor_P256SignPlusVerifyPrehashed)->MinTime(2.0);

void BM_ParseCsr_Fast(benchmark::State& state) {
  const Fixture& f = F();
  size_t i = 0;
  for (auto _ : state) {
    auto csr = vouch::pki::ParseCsr(f.csr_pems[i++ % f.csr_pems.size()]);
    if (!csr.ok()) state.SkipWithError("ParseCsr");
    benchmark::DoNotOptimize(csr);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseCsr_Fast);

// PEM_read_bio_X509_REQ decodes the key (OpenSSL 3.0 decoder chain), then X509_REQ_verify.
void BM_ParseCsr_Obvious(benchmark::State& state) {
  const Fixture& f = F();
  size_t i = 0;
  for (auto _ : state) {
    const std::string& pem = f.csr_pems[i++ % f.csr_pems.size()];
    vouch::crypto::BioPtr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    vouch::crypto::X509ReqPtr req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
    if (!req || X509_REQ_verify(req.get(), X509_REQ_get0_pubkey(req.get())) != 1) state.SkipWithError("verify");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseCsr_Obvious);

// Just the key decode of the obvious path: d2i of the CSR's SubjectPublicKeyInfo.
void BM_DecodeSpki_Generic(benchmark::State& state) {
  const Fixture& f = F();
  auto csr = Must(vouch::pki::ParseCsr(f.csr_pems[0]), "ParseCsr");
  for (auto _ : state) {
    const unsigned char* p = csr.spki_der.data();
    vouch::crypto::EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(csr.spki_der.size())));
    benchmark::DoNotOptimize(key.get());
  }
}
BENCHMARK(BM_DecodeSpki_Generic);

// X509_set_pubkey from a decoded EVP_PKEY (OpenSSL 3.0 encodes it through the encoder
// framework and decodes it again) versus copying the SPKI bytes (what IssueCertificate does).
void BM_SetPubkey_FromEvpPkey(benchmark::State& state) {
  const Fixture& f = F();
  auto csr = Must(vouch::pki::ParseCsr(f.csr_pems[0]), "ParseCsr");
  const unsigned char* p = csr.spki_der.data();
  vouch::crypto::EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(csr.spki_der.size())));
  for (auto _ : state) {
    vouch::crypto::X509Ptr x(X509_new());
    if (X509_set_pubkey(x.get(), key.get()) != 1) state.SkipWithError("X509_set_pubkey");
  }
}
BENCHMARK(BM_SetPubkey_FromEvpPkey);

void BM_SetPubkey_CopySpkiBytes(benchmark::State& state) {
  const Fixture& f = F();
  auto csr = Must(vouch::pki::ParseCsr(f.csr_pems[0]), "ParseCsr");
  // The bit string starts after the 0x00 unused-bits octet; P-256 SPKI is 91 bytes, key 65.
  std::span<const uint8_t> bits(csr.spki_der.data() + csr.spki_der.size() - 65, 65);
  for (auto _ : state) {
    vouch::crypto::X509Ptr x(X509_new());
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(bits.data(), bits.size()));
    if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x.get()), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                               V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy, 65) != 1) {
      state.SkipWithError("set0_param");
    }
  }
}
BENCHMARK(BM_SetPubkey_CopySpkiBytes);

// Certificate build + sign + encode only (CSR already parsed).
void BM_BuildSignEncode_Fast(benchmark::State& state) {
  const Fixture& f = F();
  auto csr = Must(vouch::pki::ParseCsr(f.csr_pems[0]), "ParseCsr");
  IssueRequest req = IssueRequest::ForCsr(csr, CertificateProfile::kWorkload);
  req.dns_names = csr.dns_names;
  req.uris = {"spiffe://prod/app/web"};
  req.measurement = f.measurement;
  for (auto _ : state) {
    auto issued = vouch::pki::IssueCertificate(*f.signer, req);
    if (!issued.ok()) state.SkipWithError("IssueCertificate");
    benchmark::DoNotOptimize(issued);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildSignEncode_Fast);

// The whole issuance core without storage: CSR PEM in, certificate PEM+DER out.
void BM_IssuanceCore_Fast(benchmark::State& state) {
  const Fixture& f = F();
  size_t i = static_cast<size_t>(state.thread_index()) * 97;
  for (auto _ : state) benchmark::DoNotOptimize(IssueFast(f.csr_pems[i++ % f.csr_pems.size()]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssuanceCore_Fast)->Threads(1)->Threads(2)->UseRealTime()->MinTime(2.0);

void BM_IssuanceCore_Obvious(benchmark::State& state) {
  const Fixture& f = F();
  size_t i = static_cast<size_t>(state.thread_index()) * 97;
  for (auto _ : state) benchmark::DoNotOptimize(IssueObvious(f.csr_pems[i++ % f.csr_pems.size()]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssuanceCore_Obvious)->Threads(1)->Threads(2)->UseRealTime()->MinTime(2.0);

// ---------------------------------------------------------------------------------------------
// Part 2: the durable pipeline with group commit.

struct Record {
  std::string serial, subject, sans, pem;
  int64_t not_before = 0, not_after = 0, created_at = 0;
  std::chrono::steady_clock::time_point started;  // when the request began
};

class GroupCommitter {
 public:
  // `synchronous` is "FULL" (default: every COMMIT fsyncs the WAL, durable against power loss)
  // or "NORMAL" (WAL fsynced only at checkpoints: durable against a process crash or kill -9).
  explicit GroupCommitter(const std::string& path, const std::string& synchronous = "FULL",
                          std::chrono::microseconds linger = std::chrono::microseconds(0))
      : linger_(linger) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Die("sqlite3_open " + path);
    Exec("PRAGMA journal_mode=WAL");
    Exec(("PRAGMA synchronous=" + synchronous).c_str());
    Exec("CREATE TABLE certificates(serial TEXT PRIMARY KEY, zone_id TEXT, app_id TEXT, build_id TEXT, "
         "subject TEXT, sans TEXT, not_before INTEGER, not_after INTEGER, pem TEXT, status TEXT, created_at INTEGER)");
    if (sqlite3_prepare_v2(db_,
                           "INSERT INTO certificates VALUES(?1, 'zone_prod', 'app_web', 'build_1', ?2, ?3, ?4, ?5, "
                           "?6, 'valid', ?7)",
                           -1, &insert_, nullptr) != SQLITE_OK) {
      Die(std::string("prepare: ") + sqlite3_errmsg(db_));
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~GroupCommitter() {
    Stop();
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }

  // Returns the ticket to wait for.
  uint64_t Enqueue(Record r) {
    bool wake;
    uint64_t ticket;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(std::move(r));
      ticket = ++enqueued_;
      wake = committer_idle_;  // a busy committer picks the record up after its commit
      committer_idle_ = false;
    }
    if (wake) work_.notify_one();
    return ticket;
  }
  void WaitCommitted(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return committed_ >= ticket; });
  }
  uint64_t batches() const { return batches_; }
  // CPU time of the committer thread (SQLite and the fsyncs); valid after Stop().
  double cpu_seconds() const { return cpu_seconds_; }
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_.notify_one();
    thread_.join();
  }
  std::vector<double>& latencies_ms() { return latencies_ms_; }
  int64_t Count() {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "SELECT count(*) FROM certificates", -1, &st, nullptr);
    sqlite3_step(st);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
  }

 private:
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) Die(std::string(sql) + ": " + (err ? err : ""));
  }

  void Run() {
    std::vector<Record> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (pending_.empty() && !stop_) {
          committer_idle_ = true;
          work_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        }
        committer_idle_ = false;
        // Linger: give a small batch up to linger_ to grow (fewer COMMITs and WAL page writes per
        // certificate, at most linger_ more latency). Enqueue does not wake a lingering committer.
        if (linger_.count() > 0 && !stop_ && pending_.size() < kLingerTarget) {
          work_.wait_for(lock, linger_, [&] { return stop_ || pending_.size() >= kLingerTarget; });
        }
        if (pending_.empty() && stop_) {
          timespec ts{};
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
          cpu_seconds_ = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
          return;
        }
        batch.swap(pending_);
      }
      Exec("BEGIN IMMEDIATE");
      for (const Record& r : batch) {
        sqlite3_bind_text(insert_, 1, r.serial.data(), static_cast<int>(r.serial.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert_, 2, r.subject.data(), static_cast<int>(r.subject.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert_, 3, r.sans.data(), static_cast<int>(r.sans.size()), SQLITE_STATIC);
        sqlite3_bind_int64(insert_, 4, r.not_before);
        sqlite3_bind_int64(insert_, 5, r.not_after);
        sqlite3_bind_text(insert_, 6, r.pem.data(), static_cast<int>(r.pem.size()), SQLITE_STATIC);
        sqlite3_bind_int64(insert_, 7, r.created_at);
        if (sqlite3_step(insert_) != SQLITE_DONE) Die(std::string("insert: ") + sqlite3_errmsg(db_));
        sqlite3_reset(insert_);
      }
      Exec("COMMIT");
      auto now = std::chrono::steady_clock::now();
      for (const Record& r : batch) {
        latencies_ms_.push_back(std::chrono::duration<double, std::milli>(now - r.started).count());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        committed_ += batch.size();
        ++batches_;
      }
      done_.notify_all();
      batch.clear();
    }
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::mutex mu_;
  std::condition_variable work_, done_;
  std::vector<Record> pending_;
  uint64_t enqueued_ = 0, committed_ = 0, batches_ = 0;
  bool stop_ = false;
  bool committer_idle_ = false;
  static constexpr size_t kLingerTarget = 64;
  std::chrono::microseconds linger_;
  double cpu_seconds_ = 0;
  std::vector<double> latencies_ms_;  // committer thread only
  std::thread thread_;
};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Each issuing thread keeps up to `window` certificates awaiting commit (the server's
// concurrent requests); a certificate's answer is released when its batch commits.
void RunPipeline(const std::string& db_path, const std::string& synchronous, std::chrono::microseconds linger,
                 int threads, double seconds, bool obvious) {
  const Fixture& f = F();
  GroupCommitter committer(db_path, synchronous, linger);
  constexpr size_t kWindow = 64;
  std::atomic<uint64_t> issued{0};
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  double cpu0 = ProcessCpuSeconds();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::deque<uint64_t> waiting;
      size_t i = static_cast<size_t>(t) * 131;
      while (std::chrono::steady_clock::now() < deadline) {
        Record rec;
        rec.started = std::chrono::steady_clock::now();
        Issued c = obvious ? IssueObvious(f.csr_pems[i++ % f.csr_pems.size()])
                           : IssueFast(f.csr_pems[i++ % f.csr_pems.size()]);
        rec.serial = std::move(c.cert.serial_hex);
        rec.subject = std::move(c.subject);
        rec.sans = std::move(c.sans);
        rec.pem = std::move(c.cert.pem);
        rec.not_before = vouch::ToUnixSeconds(c.cert.not_before);
        rec.not_after = vouch::ToUnixSeconds(c.cert.not_after);
        rec.created_at = vouch::ToUnixSeconds(std::chrono::system_clock::now());
        waiting.push_back(committer.Enqueue(std::move(rec)));
        issued.fetch_add(1, std::memory_order_relaxed);
        if (waiting.size() > kWindow) {
          committer.WaitCommitted(waiting.front());
          waiting.pop_front();
        }
      }
      if (!waiting.empty()) committer.WaitCommitted(waiting.back());
    });
  }
  for (auto& w : workers) w.join();
  auto end = std::chrono::steady_clock::now();
  double cpu = ProcessCpuSeconds() - cpu0;
  double wall = std::chrono::duration<double>(end - start).count();
  uint64_t n = issued.load();
  committer.Stop();
  int64_t rows = committer.Count();
  auto& lat = committer.latencies_ms();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * static_cast<double>(lat.size())))]; };
  std::printf("pipeline/%s/synchronous=%s/linger_us=%lld/threads:%d  %8.0f certs/s  (%llu certs committed, rows=%lld, %.2f s wall, "
              "%.2f CPU-s => %.0f certs per CPU-second; issuing threads %.0f certs per CPU-second, "
              "committer %.1f us CPU per cert; %llu batches, mean batch %.1f, commit latency "
              "p50 %.2f ms p99 %.2f ms)\n",
              obvious ? "obvious" : "fast", synchronous.c_str(), static_cast<long long>(linger.count()), threads, static_cast<double>(n) / wall,
              static_cast<unsigned long long>(n), static_cast<long long>(rows), wall, cpu,
              static_cast<double>(n) / cpu, static_cast<double>(n) / (cpu - committer.cpu_seconds()),
              committer.cpu_seconds() * 1e6 / static_cast<double>(n), static_cast<unsigned long long>(committer.batches()),
              static_cast<double>(n) / static_cast<double>(std::max<uint64_t>(1, committer.batches())), pct(0.5),
              pct(0.99));
  if (rows != static_cast<int64_t>(n)) Die("row count mismatch");
}

// ---------------------------------------------------------------------------------------------
// Part 3 (--instructions=N): each path N times in its own non-inlined function, for
// `valgrind --tool=callgrind`, whose inclusive instruction counts per function / N do not
// depend on the machine's load.

[[gnu::noinline]] void InstrFloor(int n) {
  auto key = Must(vouch::crypto::GenerateP256(), "key");
  std::vector<uint8_t> tbs(420, 0x11), info(230, 0x22);
  unsigned char sig[80];
  size_t sig_len = sizeof(sig);
  vouch::crypto::EvpMdCtxPtr s0(EVP_MD_CTX_new());
  EVP_DigestSignInit(s0.get(), nullptr, EVP_sha256(), nullptr, key.get());
  EVP_DigestSign(s0.get(), sig, &sig_len, info.data(), info.size());
  for (int i = 0; i < n; ++i) {
    vouch::crypto::EvpMdCtxPtr v(EVP_MD_CTX_new());
    EVP_DigestVerifyInit(v.get(), nullptr, EVP_sha256(), nullptr, key.get());
    if (EVP_DigestVerify(v.get(), sig, sig_len, info.data(), info.size()) != 1) Die("verify");
    vouch::crypto::EvpMdCtxPtr s(EVP_MD_CTX_new());
    unsigned char out[80];
    size_t out_len = sizeof(out);
    EVP_DigestSignInit(s.get(), nullptr, EVP_sha256(), nullptr, key.get());
    if (EVP_DigestSign(s.get(), out, &out_len, tbs.data(), tbs.size()) != 1) Die("sign");
  }
}

[[gnu::noinline]] void InstrParseFast(int n) {
  for (int i = 0; i < n; ++i) benchmark::DoNotOptimize(vouch::pki::ParseCsr(F().csr_pems[static_cast<size_t>(i) % 256]));
}

[[gnu::noinline]] void InstrIssuanceFast(int n) {
  for (int i = 0; i < n; ++i) benchmark::DoNotOptimize(IssueFast(F().csr_pems[static_cast<size_t>(i) % 256]));
}

[[gnu::noinline]] void InstrIssuanceObvious(int n) {
  for (int i = 0; i < n; ++i) benchmark::DoNotOptimize(IssueObvious(F().csr_pems[static_cast<size_t>(i) % 256]));
}

[[gnu::noinline]] void InstrPipelineFast(const std::string& db, int n) {
  // Same work as one pipeline thread: issue, enqueue, group commit (the committer thread's
  // instructions are counted too: callgrind serialises threads).
  GroupCommitter committer(db);
  uint64_t last = 0;
  for (int i = 0; i < n; ++i) {
    Issued c = IssueFast(F().csr_pems[static_cast<size_t>(i) % 256]);
    Record rec;
    rec.serial = std::move(c.cert.serial_hex);
    rec.subject = std::move(c.subject);
    rec.sans = std::move(c.sans);
    rec.pem = std::move(c.cert.pem);
    rec.not_before = vouch::ToUnixSeconds(c.cert.not_before);
    rec.not_after = vouch::ToUnixSeconds(c.cert.not_after);
    last = committer.Enqueue(std::move(rec));
  }
  committer.WaitCommitted(last);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5.0;
  bool skip_pipeline = false, skip_micro = false;
  int instructions = 0;
  std::string synchronous = "FULL";
  std::chrono::microseconds linger(0);
  std::string db = (std::filesystem::temp_directory_path() / "vouch-bench-issuance.db").string();
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a.rfind("--pipeline_seconds=", 0) == 0) {
      seconds = std::stod(std::string(a.substr(19)));
    } else if (a.rfind("--db=", 0) == 0) {
      db = std::string(a.substr(5));
    } else if (a.rfind("--synchronous=", 0) == 0) {
      synchronous = std::string(a.substr(14));
      if (synchronous != "FULL" && synchronous != "NORMAL") Die("--synchronous=FULL|NORMAL");
    } else if (a.rfind("--linger_us=", 0) == 0) {
      linger = std::chrono::microseconds(std::stoll(std::string(a.substr(12))));
    } else if (a.rfind("--instructions=", 0) == 0) {
      instructions = std::stoi(std::string(a.substr(15)));
    } else if (a == "--skip_pipeline") {
      skip_pipeline = true;
    } else if (a == "--pipeline_only") {
      skip_micro = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  F();  // build the fixture outside the timings
  if (instructions > 0) {
    InstrFloor(instructions);
    InstrParseFast(instructions);
    InstrIssuanceFast(instructions);
    InstrIssuanceObvious(instructions);
    InstrPipelineFast(db, instructions);
    return 0;
  }
  if (!skip_micro) benchmark::RunSpecifiedBenchmarks();
  if (!skip_pipeline) {
    std::printf("\nDurable pipeline: SQLite %s, WAL, synchronous=%s, db %s\n", sqlite3_libversion(),
                synchronous.c_str(), db.c_str());
    RunPipeline(db, synchronous, linger, 1, seconds, false);
    RunPipeline(db, synchronous, linger, 2, seconds, false);
    RunPipeline(db, synchronous, linger, 1, seconds, true);
    RunPipeline(db, synchronous, linger, 2, seconds, true);
  }
  benchmark::Shutdown();
  return 0;
}
