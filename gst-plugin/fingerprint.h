// DTLS fingerprints: webrtcbin 1.22 neither checks the remote certificate against the SDP's
// a=fingerprint nor refuses an SDP without one (fixed upstream in 1.28.5). The element does
// both with these pure helpers.
#pragma once

#include <gst/sdp/sdp.h>

#include <optional>
#include <string>
#include <vector>

namespace webrtccall {

struct Fingerprint {
  std::string algorithm;  // lower case: "sha-256", "sha-1", "sha-384", "sha-512"
  std::string hex;        // upper case, colon separated: "AB:CD:..."
};

// Every a=fingerprint of the SDP, session level and media level.
std::vector<Fingerprint> sdp_fingerprints(const GstSDPMessage* sdp);

// The fingerprint of a PEM certificate with `algorithm`; nullopt when the PEM cannot be read
// or the algorithm is not supported.
std::optional<std::string> certificate_fingerprint(const std::string& pem,
                                                   const std::string& algorithm);

// Whether the certificate matches one of the SDP's fingerprints (with a supported algorithm).
bool certificate_matches(const std::string& pem, const std::vector<Fingerprint>& fingerprints);

}  // namespace webrtccall
