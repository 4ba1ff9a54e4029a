#include "simpcs/catalog.h"

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "crypto/x509_ext.h"

namespace vouch::simpcs {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxFileBytes = 4 << 20;
// The DCAP file names (attest/dcap_collateral.h) plus the ones the test folders add.
constexpr std::string_view kTcbInfo = "tcbInfo.json";
constexpr std::string_view kQeIdentity = "qeIdentity.json";
constexpr std::string_view kRootCaCrl = "rootCaCrl.der";
constexpr std::string_view kPckCrl = "intermediateCaCrl.der";
constexpr std::string_view kTcbSignChain = "tcbSignChain.pem";
constexpr std::string_view kPckSignChain = "pckSignChain.pem";
constexpr std::string_view kPckCrlIssuerChain = "pckCrlIssuerChain.pem";
constexpr std::string_view kEvalNumbers = "tcbEvaluationDataNumbers.json";
constexpr std::string_view kAmdCrl = "crl.der";
// DCAP files that are not SNP certificates even though they are PEM.
const std::set<std::string_view> kDcapNames = {kTcbInfo,      kQeIdentity,        kRootCaCrl,
                                               kPckCrl,       kTcbSignChain,      kPckSignChain,
                                               kPckCrlIssuerChain, kEvalNumbers, "pckCert.pem",
                                               "trustedRootCaCert.pem", "quote.dat"};
constexpr std::string_view kAmdOidPrefix = "1.3.6.1.4.1.3704.1.";

Status Bad(const std::string& file, const std::string& what) {
  return InvalidArgument(file + ": " + what, "malformed_collateral");
}

std::optional<std::string> ReadIfPresent(const fs::path& dir, std::string_view name, Status* error) {
  fs::path p = dir / std::string(name);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  auto r = ReadWholeFile(p.string(), kMaxFileBytes);
  if (!r.ok()) {
    *error = r.status();
    return std::nullopt;
  }
  return *r;
}

Result<TimePoint> JsonTime(const json& obj, const char* key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return Bad(file, std::string("no ") + key);
  auto t = ParseRfc3339(it->get<std::string>());
  if (!t.ok()) return Bad(file, std::string(key) + " is not RFC 3339");
  return *t;
}

// {"tcbInfo": {...}} / {"enclaveIdentity": {...}} / {"qeIdentity": {...}} /
// {"tcbEvaluationDataNumbers": {...}} -> the inner object.
Result<SignedJson> ParseSignedJson(const std::string& body, const std::string& file, const char* const* keys,
                                   json* inner_out) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Bad(file, "not a JSON object");
  const json* inner = nullptr;
  for (const char* const* k = keys; *k != nullptr; ++k) {
    auto it = doc.find(*k);
    if (it != doc.end() && it->is_object()) inner = &*it;
  }
  if (inner == nullptr) return Bad(file, "no signed body object");
  SignedJson s;
  s.body = body;
  s.source = file;
  VOUCH_ASSIGN_OR_RETURN(s.issue_date, JsonTime(*inner, "issueDate", file));
  VOUCH_ASSIGN_OR_RETURN(s.next_update, JsonTime(*inner, "nextUpdate", file));
  auto n = inner->find("tcbEvaluationDataNumber");
  if (n != inner->end() && n->is_number_integer()) s.tcb_evaluation_data_number = n->get<int64_t>();
  *inner_out = *inner;
  return s;
}

Result<Crl> ParseCrl(const std::string& bytes, const std::string& file) {
  auto crl = crypto::CrlFromDerOrPem(AsBytes(bytes));
  if (!crl.ok()) return Bad(file, "not a CRL: " + crl.status().message());
  Crl c;
  c.source = file;
  c.file_is_pem = bytes.find("-----BEGIN") != std::string::npos;
  auto der = crypto::CrlToDer(crl->get());
  auto pem = crypto::CrlToPem(crl->get());
  if (!der.ok() || !pem.ok()) return Bad(file, "CRL cannot be re-encoded");
  // Byte for byte: the file itself in its own encoding, the other one converted.
  c.der = c.file_is_pem ? ToString(*der) : bytes;
  c.pem = c.file_is_pem ? bytes : *pem;
  c.this_update = crypto::Asn1TimeToTimePoint(X509_CRL_get0_lastUpdate(crl->get()));
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl->get());
  c.next_update = next != nullptr ? crypto::Asn1TimeToTimePoint(next) : TimePoint::max();
  std::string issuer = crypto::NameToString(X509_CRL_get_issuer(crl->get()));
  c.ca = issuer.find("Processor") != std::string::npos ? "processor" : "platform";
  return c;
}

// The DER value of the AMD extension 1.3.6.1.4.1.3704.1.<suffix>.
std::optional<std::string> AmdExtension(X509* cert, std::string_view suffix) {
  auto value = crypto::ExtensionValue(cert, std::string(kAmdOidPrefix) + std::string(suffix));
  if (!value) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(value->data()), value->size());
}

struct Asn1TypeFree {
  void operator()(ASN1_TYPE* t) const { ASN1_TYPE_free(t); }
};

std::unique_ptr<ASN1_TYPE, Asn1TypeFree> ParseWhole(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ASN1_TYPE, Asn1TypeFree> t(d2i_ASN1_TYPE(nullptr, &p, static_cast<long>(der.size())));
  if (!t || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    crypto::DrainOpensslErrors();
    return nullptr;
  }
  return t;
}

std::optional<uint8_t> Spl(X509* cert, std::string_view suffix) {
  auto der = AmdExtension(cert, suffix);
  if (!der) return std::nullopt;
  auto t = ParseWhole(*der);
  int64_t v = -1;
  if (!t || ASN1_TYPE_get(t.get()) != V_ASN1_INTEGER || ASN1_INTEGER_get_int64(&v, t->value.integer) != 1 || v < 0 ||
      v > 255) {
    crypto::DrainOpensslErrors();
    return std::nullopt;
  }
  return static_cast<uint8_t>(v);
}

std::optional<std::string> ProductName(X509* cert) {
  auto der = AmdExtension(cert, "2");
  if (!der) return std::nullopt;
  auto t = ParseWhole(*der);
  if (!t) return std::nullopt;
  int type = ASN1_TYPE_get(t.get());
  if (type != V_ASN1_IA5STRING && type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING) return std::nullopt;
  const ASN1_STRING* s = t->value.asn1_string;
  std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
  return name.substr(0, name.find('-'));
}

// A VCEK from its extensions, or nullopt (not a VCEK: no hwID, e.g. a VLEK).
std::optional<Vcek> ReadVcek(X509* cert, const std::string& der, const std::string& file) {
  auto hw = AmdExtension(cert, "4");
  if (!hw) return std::nullopt;
  std::string raw = *hw;
  // KDS writes the raw bytes; some issuers wrap them in an OCTET STRING.
  if (raw.size() >= 2 && static_cast<uint8_t>(raw[0]) == 0x04 && static_cast<uint8_t>(raw[1]) == raw.size() - 2) {
    raw = raw.substr(2);
  }
  if (raw.size() != 64 && raw.size() != 8) return std::nullopt;
  auto product = ProductName(cert);
  auto bl = Spl(cert, "3.1"), tee = Spl(cert, "3.2"), snp = Spl(cert, "3.3"), ucode = Spl(cert, "3.8");
  if (!product || !bl || !tee || !snp || !ucode) return std::nullopt;
  Vcek v;
  v.product = *product;
  v.hwid_hex = HexEncode(AsBytes(raw));
  v.bl = *bl;
  v.tee = *tee;
  v.snp = *snp;
  v.ucode = *ucode;
  v.fmc = Spl(cert, "3.9");
  v.der = der;
  v.source = file;
  return v;
}

bool IsRsa(X509* c) {
  EVP_PKEY* key = X509_get0_pubkey(c);
  return key != nullptr && (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA || EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA_PSS);
}

// "ARK-Milan" -> "Milan"; "SEV-Milan" -> "Milan"; "SEV-VLEK-Milan" -> "Milan".
std::string ProductFromCn(const std::string& cn) {
  size_t dash = cn.rfind('-');
  return dash == std::string::npos ? cn : cn.substr(dash + 1);
}

Status LoadDcap(const fs::path& dir, Catalog* cat) {
  Status err;
  const std::string d = dir.string() + "/";
  auto sign_chain = ReadIfPresent(dir, kTcbSignChain, &err);
  if (auto body = ReadIfPresent(dir, kTcbInfo, &err)) {
    static const char* const kKeys[] = {"tcbInfo", nullptr};
    json inner;
    VOUCH_ASSIGN_OR_RETURN(SignedJson s, ParseSignedJson(*body, d + std::string(kTcbInfo), kKeys, &inner));
    auto id = inner.find("id");
    s.tee = (id != inner.end() && id->is_string() && id->get<std::string>() == "TDX") ? Tee::kTdx : Tee::kSgx;
    auto f = inner.find("fmspc");
    if (f == inner.end() || !f->is_string() || f->get<std::string>().size() != 12) {
      return Bad(s.source, "no 12-hex-digit fmspc");
    }
    s.fmspc = f->get<std::string>();
    std::transform(s.fmspc.begin(), s.fmspc.end(), s.fmspc.begin(), [](unsigned char c) { return std::tolower(c); });
    s.issuer_chain_pem = sign_chain.value_or("");
    cat->tcb_infos.push_back(std::move(s));
  }
  if (auto body = ReadIfPresent(dir, kQeIdentity, &err)) {
    static const char* const kKeys[] = {"enclaveIdentity", "qeIdentity", nullptr};
    json inner;
    VOUCH_ASSIGN_OR_RETURN(SignedJson s, ParseSignedJson(*body, d + std::string(kQeIdentity), kKeys, &inner));
    auto id = inner.find("id");
    std::string ids = (id != inner.end() && id->is_string()) ? id->get<std::string>() : "QE";
    if (ids != "QE" && ids != "TD_QE") return Bad(s.source, "identity id \"" + ids + "\" is not QE or TD_QE");
    s.tee = ids == "TD_QE" ? Tee::kTdx : Tee::kSgx;
    s.issuer_chain_pem = sign_chain.value_or("");
    cat->qe_identities.push_back(std::move(s));
  }
  if (auto body = ReadIfPresent(dir, kEvalNumbers, &err)) {
    static const char* const kKeys[] = {"tcbEvaluationDataNumbers", nullptr};
    json inner;
    VOUCH_ASSIGN_OR_RETURN(SignedJson s, ParseSignedJson(*body, d + std::string(kEvalNumbers), kKeys, &inner));
    auto id = inner.find("id");
    s.tee = (id != inner.end() && id->is_string() && id->get<std::string>() == "TDX") ? Tee::kTdx : Tee::kSgx;
    s.issuer_chain_pem = sign_chain.value_or("");
    cat->evaluation_numbers.push_back(std::move(s));
  }
  if (auto body = ReadIfPresent(dir, kPckCrl, &err)) {
    VOUCH_ASSIGN_OR_RETURN(Crl c, ParseCrl(*body, d + std::string(kPckCrl)));
    auto chain = ReadIfPresent(dir, kPckCrlIssuerChain, &err);
    if (!chain) chain = ReadIfPresent(dir, kPckSignChain, &err);
    c.issuer_chain_pem = chain.value_or("");
    cat->pck_crls.push_back(std::move(c));
  }
  if (auto body = ReadIfPresent(dir, kRootCaCrl, &err)) {
    VOUCH_ASSIGN_OR_RETURN(Crl c, ParseCrl(*body, d + std::string(kRootCaCrl)));
    c.ca = "root";
    cat->root_crls.push_back(std::move(c));
  }
  return err;
}

Status LoadSnp(const fs::path& dir, Catalog* cat) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name == kSecretsFile || kDcapNames.count(name) != 0 || !e.is_regular_file(ec)) continue;
    std::string ext = e.path().extension().string();
    if (ext != ".der" && ext != ".pem" && ext != ".cer" && ext != ".crt") continue;
    files.push_back(e.path());
  }
  if (ec) return InvalidArgument(dir.string() + ": cannot list: " + ec.message(), "collateral_dir_unreadable");
  std::sort(files.begin(), files.end());
  AmdProduct prod;
  crypto::X509Ptr ark, ask, asvk;
  std::string chain_file_bytes, crl_der;
  for (const auto& p : files) {
    VOUCH_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(p.string(), kMaxFileBytes));
    if (p.filename() == kAmdCrl) {
      auto crl = crypto::CrlFromDerOrPem(AsBytes(bytes));
      if (!crl.ok()) return Bad(p.string(), "not a CRL");
      crl_der = bytes;
      continue;
    }
    std::vector<crypto::X509Ptr> certs;
    if (bytes.find("-----BEGIN CERTIFICATE") != std::string::npos) {
      auto r = crypto::CertsFromPem(bytes);
      if (!r.ok()) return Bad(p.string(), "PEM certificates do not parse");
      certs = std::move(*r);
    } else {
      auto r = crypto::CertFromDer(AsBytes(bytes));
      if (!r.ok()) continue;  // not a certificate (e.g. a CRL under another name): not served
      certs.push_back(std::move(*r));
    }
    for (auto& c : certs) {
      if (!IsRsa(c.get())) {
        auto der = crypto::CertToDer(c.get());
        if (!der.ok()) continue;
        if (auto v = ReadVcek(c.get(), ToString(*der), p.string())) {
          // A PEM file's leaf is served as DER, as KDS does.
          cat->vceks.push_back(std::move(*v));
          if (prod.product.empty()) prod.product = cat->vceks.back().product;
        }
        continue;
      }
      std::string cn = crypto::SubjectCommonName(c.get());
      if (crypto::IsSelfSigned(c.get())) {
        if (!ark) ark = std::move(c);
      } else if (cn.find("VLEK") != std::string::npos) {
        if (!asvk) asvk = std::move(c);
      } else if (!ask) {
        ask = std::move(c);
      }
    }
    if (p.filename() == "cert_chain.pem") chain_file_bytes = bytes;
  }
  if (!ark && cat->vceks.empty() && crl_der.empty()) return Status();
  if (prod.product.empty() && ark) prod.product = ProductFromCn(crypto::SubjectCommonName(ark.get()));
  if (prod.product.empty()) return Status();
  prod.source = dir.string();
  prod.crl_der = crl_der;
  if (ark && ask) {
    // cert_chain.pem of a sim folder is already "ASK then ARK": served byte for byte.
    auto ask_pem = crypto::CertToPem(ask.get());
    auto ark_pem = crypto::CertToPem(ark.get());
    if (ask_pem.ok() && ark_pem.ok()) {
      prod.vcek_chain_pem = !chain_file_bytes.empty() ? chain_file_bytes : *ask_pem + *ark_pem;
      if (asvk) {
        auto asvk_pem = crypto::CertToPem(asvk.get());
        if (asvk_pem.ok()) prod.vlek_chain_pem = *asvk_pem + *ark_pem;
      }
    }
  }
  cat->amd_products.push_back(std::move(prod));
  return Status();
}

}  // namespace

std::string_view TeeName(Tee tee) { return tee == Tee::kTdx ? "tdx" : "sgx"; }

Result<std::shared_ptr<const Catalog>> Catalog::Load(const std::vector<std::string>& dirs) {
  auto cat = std::make_shared<Catalog>();
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) {
      return InvalidArgument("--serve " + d + ": not a readable directory", "collateral_dir_unreadable");
    }
    VOUCH_RETURN_IF_ERROR(LoadDcap(d, cat.get()));
    VOUCH_RETURN_IF_ERROR(LoadSnp(d, cat.get()));
  }
  return std::shared_ptr<const Catalog>(std::move(cat));
}

std::string Catalog::Fingerprint(const std::vector<std::string>& dirs) {
  std::string out;
  for (const auto& d : dirs) {
    std::error_code ec;
    std::vector<std::string> lines;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      struct stat st {};
      if (::stat(e.path().c_str(), &st) != 0) continue;
      lines.push_back(e.path().string() + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
                      "." + std::to_string(st.st_mtim.tv_nsec));
    }
    std::sort(lines.begin(), lines.end());
    for (auto& l : lines) out += l + "\n";
  }
  return out;
}

namespace {
template <typename T, typename Newer>
const T* PickImpl(const std::vector<const T*>& c, TimePoint now, Newer newer) {
  const T* best = nullptr;
  for (const T* x : c) {  // valid at now
    if (x->issue_time() <= now && now < x->next_update && (best == nullptr || newer(*x, *best))) best = x;
  }
  if (best != nullptr) return best;
  for (const T* x : c) {  // issued by now
    if (x->issue_time() <= now && (best == nullptr || newer(*x, *best))) best = x;
  }
  if (best != nullptr) return best;
  for (const T* x : c) {  // all in the future: the oldest
    if (best == nullptr || newer(*best, *x)) best = x;
  }
  return best;
}

struct JsonView {
  const SignedJson* s;
  TimePoint next_update;
  TimePoint issue_time() const { return s->issue_date; }
};
struct CrlView {
  const Crl* c;
  TimePoint next_update;
  TimePoint issue_time() const { return c->this_update; }
};
}  // namespace

const SignedJson* PickAt(const std::vector<const SignedJson*>& candidates, TimePoint now) {
  std::vector<JsonView> views;
  for (const auto* s : candidates) views.push_back({s, s->next_update});
  std::vector<const JsonView*> ptrs;
  for (const auto& v : views) ptrs.push_back(&v);
  const JsonView* best = PickImpl(ptrs, now, [](const JsonView& a, const JsonView& b) {
    if (a.s->tcb_evaluation_data_number != b.s->tcb_evaluation_data_number) {
      return a.s->tcb_evaluation_data_number > b.s->tcb_evaluation_data_number;
    }
    return a.s->issue_date > b.s->issue_date;
  });
  return best == nullptr ? nullptr : best->s;
}

const Crl* PickAt(const std::vector<const Crl*>& candidates, TimePoint now) {
  std::vector<CrlView> views;
  for (const auto* c : candidates) views.push_back({c, c->next_update});
  std::vector<const CrlView*> ptrs;
  for (const auto& v : views) ptrs.push_back(&v);
  const CrlView* best =
      PickImpl(ptrs, now, [](const CrlView& a, const CrlView& b) { return a.c->this_update > b.c->this_update; });
  return best == nullptr ? nullptr : best->c;
}

}  // namespace vouch::simpcs
