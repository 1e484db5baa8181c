#include "fingerprint.h"

#include <gio/gio.h>

#include <cctype>
#include <string_view>

#include "gref.h"

namespace webrtccall {

namespace {

void add_from_attribute(const char* value, std::vector<Fingerprint>& out) {
  if (!value) return;
  std::string v(value);
  std::size_t space = v.find(' ');
  if (space == std::string::npos) return;
  Fingerprint f;
  for (char c : v.substr(0, space)) f.algorithm.push_back(static_cast<char>(std::tolower(c)));
  for (char c : v.substr(space + 1)) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      f.hex.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  if (!f.hex.empty()) out.push_back(std::move(f));
}

std::optional<GChecksumType> checksum_type(const std::string& algorithm) {
  if (algorithm == "sha-256") return G_CHECKSUM_SHA256;
  if (algorithm == "sha-1") return G_CHECKSUM_SHA1;
  if (algorithm == "sha-384") return G_CHECKSUM_SHA384;
  if (algorithm == "sha-512") return G_CHECKSUM_SHA512;
  return std::nullopt;
}

}  // namespace

std::vector<Fingerprint> sdp_fingerprints(const GstSDPMessage* sdp) {
  std::vector<Fingerprint> out;
  for (guint i = 0; i < gst_sdp_message_attributes_len(sdp); ++i) {
    const GstSDPAttribute* a = gst_sdp_message_get_attribute(sdp, i);
    if (g_strcmp0(a->key, "fingerprint") == 0) add_from_attribute(a->value, out);
  }
  for (guint m = 0; m < gst_sdp_message_medias_len(sdp); ++m) {
    const GstSDPMedia* media = gst_sdp_message_get_media(sdp, m);
    for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
      const GstSDPAttribute* a = gst_sdp_media_get_attribute(media, i);
      if (g_strcmp0(a->key, "fingerprint") == 0) add_from_attribute(a->value, out);
    }
  }
  return out;
}

std::optional<std::string> certificate_fingerprint(const std::string& pem,
                                                   const std::string& algorithm) {
  auto type = checksum_type(algorithm);
  if (!type) return std::nullopt;
  // The first certificate of the PEM, decoded by hand: no TLS backend needed.
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::size_t begin = pem.find(kBegin);
  std::size_t end = begin == std::string::npos ? begin : pem.find(kEnd, begin);
  if (end == std::string::npos) return std::nullopt;
  std::string b64 = pem.substr(begin + kBegin.size(), end - begin - kBegin.size());
  gsize der_len = 0;
  gwc::GCharPtr der(reinterpret_cast<char*>(g_base64_decode(b64.c_str(), &der_len)));
  if (!der || der_len == 0) return std::nullopt;
  gsize len = static_cast<gsize>(g_checksum_type_get_length(*type));
  std::vector<guint8> digest(len);
  GChecksum* sum = g_checksum_new(*type);
  g_checksum_update(sum, reinterpret_cast<const guchar*>(der.get()), der_len);
  g_checksum_get_digest(sum, digest.data(), &len);
  g_checksum_free(sum);
  static const char kHex[] = "0123456789ABCDEF";
  std::string hex;
  for (gsize i = 0; i < len; ++i) {
    if (i) hex.push_back(':');
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

bool certificate_matches(const std::string& pem, const std::vector<Fingerprint>& fingerprints) {
  for (const Fingerprint& f : fingerprints) {
    auto computed = certificate_fingerprint(pem, f.algorithm);
    if (computed && *computed == f.hex) return true;
  }
  return false;
}

}  // namespace webrtccall
