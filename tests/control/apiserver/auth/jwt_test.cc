#include "control/apiserver/auth/jwt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "control/api/json.h"
#include "control/apiserver/auth/service_account_token.h"

namespace skiff::apiserver::auth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

api::Value claimsOf(std::string_view json) {
  return api::parseJson(json);
}

// Swaps one part of a compact JWS.
std::string replacePart(const std::string& token, int part, const std::string& text) {
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  std::string parts[3] = {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
  parts[part] = text;
  return parts[0] + "." + parts[1] + "." + parts[2];
}

TEST(Base64Url, RoundTripsEveryLengthWithoutPadding) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    std::string encoded = base64UrlEncode(data);
    EXPECT_EQ(encoded.find('='), std::string::npos);
    EXPECT_EQ(encoded.find('+'), std::string::npos);
    EXPECT_EQ(encoded.find('/'), std::string::npos);
    EXPECT_EQ(base64UrlDecode(encoded), data) << i;
    data += static_cast<char>(0xf8 + i);  // bytes that need '-' and '_'
  }
  EXPECT_EQ(base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64UrlDecode("ab+c"));   // standard base64, not base64url
  EXPECT_FALSE(base64UrlDecode("abcde"));  // impossible length
  EXPECT_FALSE(base64UrlDecode("-_9"));    // non-zero leftover bits
}

TEST(Jwt, SignsAndVerifiesEs256) {
  JwtSigner signer(generateSigningKeyPem());
  JwtVerifier verifier(signer.publicKeyPem());
  EXPECT_EQ(signer.keyId(), verifier.keyId());
  std::string token = signer.sign(claimsOf(R"({"sub":"me","n":7})"));
  EXPECT_TRUE(looksLikeJwt(token));
  api::Value header = api::parseJson(*base64UrlDecode(token.substr(0, token.find('.'))));
  EXPECT_EQ(header.find("alg")->text(), "ES256");
  EXPECT_EQ(header.find("kid")->text(), signer.keyId());
  api::Value claims = verifier.verify(token);
  EXPECT_EQ(claims.find("sub")->text(), "me");
  EXPECT_EQ(claims.find("n")->asInt(), 7);
  // The signature is R||S, 64 bytes.
  EXPECT_EQ(base64UrlDecode(token.substr(token.rfind('.') + 1))->size(), 64u);
}

TEST(Jwt, RejectsTamperedTokens) {
  JwtSigner signer(generateSigningKeyPem());
  JwtVerifier verifier(signer.publicKeyPem());
  std::string token = signer.sign(claimsOf(R"({"sub":"system:serviceaccount:a:b"})"));
  // Another payload under the original signature.
  std::string forged =
      replacePart(token, 1, base64UrlEncode(R"({"sub":"system:serviceaccount:kube-system:x"})"));
  EXPECT_THROW(verifier.verify(forged), JwtError);
  // A flipped bit in the signature.
  std::string sig = *base64UrlDecode(token.substr(token.rfind('.') + 1));
  sig[10] = static_cast<char>(sig[10] ^ 1);
  EXPECT_THROW(verifier.verify(replacePart(token, 2, base64UrlEncode(sig))), JwtError);
  // alg none, and an HMAC header: only ES256 is accepted.
  EXPECT_THAT([&] { verifier.verify(replacePart(token, 0, base64UrlEncode(R"({"alg":"none"})"))); },
              ::testing::ThrowsMessage<JwtError>(HasSubstr("only ES256")));
  EXPECT_THROW(verifier.verify(replacePart(token, 0, base64UrlEncode(R"({"alg":"HS256"})"))),
               JwtError);
  EXPECT_THROW(verifier.verify(replacePart(token, 2, "")), JwtError);
  EXPECT_THROW(verifier.verify("a.b"), JwtError);
  EXPECT_THROW(verifier.verify("not a token"), JwtError);
  EXPECT_THROW(verifier.verify(replacePart(token, 1, "!!!")), JwtError);
  EXPECT_NO_THROW(verifier.verify(token));
}

TEST(Jwt, RejectsAnotherKeysSignature) {
  JwtSigner ours(generateSigningKeyPem());
  JwtSigner theirs(generateSigningKeyPem());
  JwtVerifier verifier(ours.publicKeyPem());
  std::string token = theirs.sign(claimsOf(R"({"sub":"x"})"));
  EXPECT_THAT([&] { verifier.verify(token); },
              ::testing::ThrowsMessage<JwtError>(HasSubstr("unknown key")));
  // Without a kid the signature check itself refuses it.
  std::string no_kid = replacePart(token, 0, base64UrlEncode(R"({"alg":"ES256"})"));
  EXPECT_THAT([&] { verifier.verify(no_kid); },
              ::testing::ThrowsMessage<JwtError>(HasSubstr("invalid signature")));
}

TEST(Jwt, RefusesKeysThatAreNotP256) {
  EXPECT_THROW(JwtSigner("not a key"), JwtError);
  EXPECT_THROW(JwtVerifier("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
               JwtError);
}

class SigningKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "skiff-jwt-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SigningKeyFile, MadeOncePrivateAndReused) {
  std::string path = (dir_ / "sa.key").string();
  std::string first = ensureSigningKey(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ensureSigningKey(path), first);
  EXPECT_EQ(JwtSigner(first).keyId(), JwtSigner(ensureSigningKey(path)).keyId());
}

TEST_F(SigningKeyFile, CorruptKeyIsAnErrorNamingTheFileAndIsKept) {
  std::string path = (dir_ / "sa.key").string();
  std::ofstream(path) << "garbage";
  EXPECT_THAT([&] { ensureSigningKey(path); }, ::testing::ThrowsMessage<JwtError>(HasSubstr(path)));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "garbage");
}

// ------------------------------------------------------------------ service account claims

class ServiceAccountTokenTest : public ::testing::Test {
 protected:
  ServiceAccountTokenTest()
      : key_(generateSigningKeyPem()), tokens_(key_, std::string(kDefaultIssuer), {}) {}

  ServiceAccountClaims claims() const {
    ServiceAccountClaims c;
    c.ns = "team-a";
    c.name = "builder";
    c.uid = "sa-uid";
    c.pod_name = "web-1";
    c.pod_uid = "pod-uid";
    c.issued_at = kNow - 10;
    c.expires_at = kNow + 3600;
    return c;
  }
  static constexpr int64_t kNow = 1'800'000'000;
  std::string key_;
  ServiceAccountTokens tokens_;
};

TEST_F(ServiceAccountTokenTest, IssuesKubernetesClaimsAndValidatesThem) {
  std::string token = tokens_.issue(claims());
  api::Value payload = JwtVerifier(tokens_.publicKeyPem()).verify(token);
  EXPECT_EQ(payload.find("iss")->text(), "https://kubernetes.default.svc.cluster.local");
  EXPECT_EQ(payload.find("sub")->text(), "system:serviceaccount:team-a:builder");
  EXPECT_EQ(payload.find("aud")->items().at(0).text(), kDefaultIssuer);
  EXPECT_EQ(payload.find("exp")->asInt(), kNow + 3600);
  EXPECT_FALSE(payload.find("jti")->text().empty());
  const api::Value* k8s = payload.find("kubernetes.io");
  ASSERT_NE(k8s, nullptr);
  EXPECT_EQ(k8s->find("namespace")->text(), "team-a");
  EXPECT_EQ(k8s->find("serviceaccount")->find("uid")->text(), "sa-uid");
  EXPECT_EQ(k8s->find("pod")->find("name")->text(), "web-1");

  auto result = tokens_.validate(token, kNow);
  ASSERT_TRUE(std::holds_alternative<ServiceAccountClaims>(result))
      << std::get<std::string>(result);
  const auto& c = std::get<ServiceAccountClaims>(result);
  EXPECT_EQ(c.subject(), "system:serviceaccount:team-a:builder");
  EXPECT_EQ(c.pod_uid, "pod-uid");
}

TEST_F(ServiceAccountTokenTest, RefusesExpiredFutureAndForeignTokens) {
  auto why = [&](const std::string& token, int64_t now = kNow) {
    auto r = tokens_.validate(token, now);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string("ok");
  };
  std::string token = tokens_.issue(claims());
  EXPECT_EQ(why(token, kNow + 3600), "the token has expired");
  EXPECT_EQ(why(token, kNow + 3599), "ok");
  auto future = claims();
  future.issued_at = kNow + 600;
  future.not_before = kNow + 600;
  EXPECT_EQ(why(tokens_.issue(future)), "the token is not valid yet");
  future.not_before = kNow + 30;  // within the leeway for clock skew
  EXPECT_EQ(why(tokens_.issue(future)), "ok");
  auto other_audience = claims();
  other_audience.audiences = {"vault"};
  EXPECT_THAT(why(tokens_.issue(other_audience)), HasSubstr("audiences"));
  // Another apiserver's key, the same claims.
  ServiceAccountTokens other(generateSigningKeyPem(), std::string(kDefaultIssuer), {});
  EXPECT_THAT(why(other.issue(claims())), HasSubstr("unknown key"));
  // Another issuer on our key.
  ServiceAccountTokens other_issuer(key_, "https://elsewhere", {std::string(kDefaultIssuer)});
  EXPECT_EQ(why(other_issuer.issue(claims())), "issued by another issuer");
}

TEST_F(ServiceAccountTokenTest, RefusesASubjectThatDisagreesWithTheClaims) {
  JwtSigner signer(key_);
  api::Value c = api::parseJson(R"({"iss":"https://kubernetes.default.svc.cluster.local",
      "aud":"https://kubernetes.default.svc.cluster.local", "exp":1800003600, "iat":1800000000,
      "sub":"system:serviceaccount:kube-system:admin",
      "kubernetes.io":{"namespace":"team-a","serviceaccount":{"name":"builder","uid":"u"}}})");
  auto r = tokens_.validate(signer.sign(c), kNow);
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_THAT(std::get<std::string>(r), HasSubstr("subject"));
  // A string audience (RFC 7519 allows it) with a matching subject is fine.
  c.set("sub", api::Value::string("system:serviceaccount:team-a:builder"));
  EXPECT_TRUE(std::holds_alternative<ServiceAccountClaims>(tokens_.validate(signer.sign(c), kNow)));
  c.erase("exp");
  EXPECT_TRUE(std::holds_alternative<std::string>(tokens_.validate(signer.sign(c), kNow)));
}

TEST(ServiceAccountUser, Splits) {
  EXPECT_EQ(splitServiceAccountUser("system:serviceaccount:ns:sa"),
            std::make_pair(std::string("ns"), std::string("sa")));
  EXPECT_FALSE(splitServiceAccountUser("system:serviceaccount:ns"));
  EXPECT_FALSE(splitServiceAccountUser("system:serviceaccount:a:b:c"));
  EXPECT_FALSE(splitServiceAccountUser("admin"));
}

}  // namespace
}  // namespace skiff::apiserver::auth
