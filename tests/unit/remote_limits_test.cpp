// The element's checks of what a remote peer sends, without GStreamer: SDP and candidate
// checks, per-peer admission (gst-plugin/remote-limits.h).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "remote-limits.h"

using webrtccall::AdmissionConfig;
using webrtccall::check_candidate;
using webrtccall::check_remote_sdp;
using webrtccall::LogThrottle;
using webrtccall::PeerAdmission;
using webrtccall::RemoteLimits;
using webrtccall::SdpView;

namespace {

std::string read_sdp(const std::string& name, bool crlf = true) {
  std::ifstream f(std::string(TEST_DATA_DIR) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string lf = ss.str(), out;
  for (char c : lf) {
    if (c == '\r') continue;  // the files may have either line ending
    if (c == '\n' && crlf) out += '\r';
    out += c;
  }
  return out;
}

std::string chromium() {
  return read_sdp("chromium-156-offer-audio-video.sdp");
}

const char* kFingerprint =
    "a=fingerprint:sha-256 "
    "48:D3:56:D9:01:8D:1E:21:18:1F:54:89:F7:8B:A3:41:F3:E8:1D:01:63:95:AA:47:9B:9B:B2:F4:11:35:81:"
    "C5\r\n";

// A minimal offer: `mlines` audio m-lines, without BUNDLE (each its own transport) or all in
// one BUNDLE group.
std::string offer_with_mlines(unsigned mlines, const std::string& extra_media = "",
                              bool bundle = false) {
  std::string s = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
  if (bundle) {
    s += "a=group:BUNDLE";
    for (unsigned i = 0; i < mlines; ++i) s += " " + std::to_string(i);
    s += "\r\n";
  }
  s += kFingerprint;
  for (unsigned i = 0; i < mlines; ++i) {
    s += "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:" + std::to_string(i) +
         "\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n"
         "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n" +
         extra_media;
  }
  return s;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  std::size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

bool refused_with(const std::string& sdp, const std::string& words, RemoteLimits limits = {}) {
  std::string why = check_remote_sdp(sdp, limits);
  if (why.find(words) == std::string::npos) {
    ADD_FAILURE() << "expected a refusal with \"" << words << "\", got \"" << why << "\"";
    return false;
  }
  return true;
}

}  // namespace

// ---- SDP ----

TEST(RemoteSdp, RealBrowserOffersAreAccepted) {
  for (bool crlf : {true, false}) {
    for (const char* name :
         {"chromium-156-offer-audio-video.sdp", "firefox-153-offer-audio-video.sdp"}) {
      SdpView view;
      EXPECT_EQ(check_remote_sdp(read_sdp(name, crlf), {}, &view), "") << name;
      ASSERT_EQ(view.media.size(), 2u) << name;
      EXPECT_EQ(view.media[0].kind, "audio");
      EXPECT_EQ(view.media[1].kind, "video");
      EXPECT_EQ(view.media[1].mid, "1");
      EXPECT_EQ(view.bundle_mids, (std::vector<std::string>{"0", "1"}));
    }
  }
  SdpView view;
  ASSERT_EQ(check_remote_sdp(chromium(), {}, &view), "");
  EXPECT_EQ(view.media[1].payload_types.size(), 23u);
}

TEST(RemoteSdp, MlinesAreBounded) {
  RemoteLimits limits;
  EXPECT_EQ(limits.max_mlines, 16u);
  EXPECT_EQ(check_remote_sdp(offer_with_mlines(16, "", true), limits), "");
  EXPECT_TRUE(refused_with(offer_with_mlines(17, "", true), "max-mlines (16)", limits));
  // The finding: 600 unbundled m-lines (fits in the server's 256 KiB message limit).
  limits.max_sdp_bytes = 1 << 20;
  EXPECT_TRUE(refused_with(offer_with_mlines(600), "max-mlines", limits));
  limits.max_mlines = 1;
  EXPECT_TRUE(refused_with(chromium(), "max-mlines (1)", limits));
}

TEST(RemoteSdp, TransportsAreBounded) {
  // Each active m-line outside BUNDLE is a transport of its own (about 10 fds, 3 threads).
  RemoteLimits limits;
  EXPECT_EQ(limits.max_transports, 4u);
  SdpView view;
  EXPECT_EQ(check_remote_sdp(offer_with_mlines(4), limits, &view), "");
  EXPECT_EQ(view.transports, 4u);
  EXPECT_TRUE(refused_with(offer_with_mlines(5), "needing 5 transports", limits));
  EXPECT_TRUE(refused_with(offer_with_mlines(5), "max-transports is 4", limits));
  EXPECT_EQ(check_remote_sdp(offer_with_mlines(16, "", true), limits, &view), "");
  EXPECT_EQ(view.transports, 1u);
  EXPECT_EQ(check_remote_sdp(chromium(), limits, &view), "");
  EXPECT_EQ(view.transports, 1u);
  // A BUNDLE group of two and three m-lines outside it: four.
  std::string mixed = replace(offer_with_mlines(5), "t=0 0\r\n", "t=0 0\r\na=group:BUNDLE 0 1\r\n");
  EXPECT_EQ(check_remote_sdp(mixed, limits, &view), "");
  EXPECT_EQ(view.transports, 4u);
  // Rejected m-lines (port 0) need none.
  std::string rejected = replace_all(offer_with_mlines(6), "m=audio 9", "m=audio 0");
  rejected = replace(rejected, "m=audio 0", "m=audio 9");
  EXPECT_EQ(check_remote_sdp(rejected, limits, &view), "");
  EXPECT_EQ(view.transports, 1u);
  limits.max_transports = 1;
  EXPECT_TRUE(refused_with(offer_with_mlines(2), "max-transports is 1", limits));
}

TEST(RemoteSdp, SizeIsBounded) {
  RemoteLimits limits;
  limits.max_sdp_bytes = chromium().size();
  EXPECT_EQ(check_remote_sdp(chromium(), limits), "");
  limits.max_sdp_bytes -= 1;
  EXPECT_TRUE(refused_with(chromium(), "max-sdp-size", limits));
}

TEST(RemoteSdp, FingerprintMustHaveAHashWeCanCheck) {
  // The only fingerprint has no hash: webrtcbin 1.22 accepts this offer.
  std::string sdp = offer_with_mlines(1);
  EXPECT_TRUE(refused_with(replace(sdp, kFingerprint, "a=fingerprint:sha-256\r\n"),
                           "a=fingerprint without a hash"));
  EXPECT_TRUE(refused_with(replace(sdp, kFingerprint, ""), "without a=fingerprint"));
  EXPECT_TRUE(refused_with(replace(sdp, "sha-256 48:D3", "sha-999 48:D3"), "unknown hash"));
  EXPECT_TRUE(refused_with(replace(sdp, "48:D3:", "48:D3:00:"), "not a sha-256 hash"));
  EXPECT_TRUE(refused_with(replace(sdp, "48:D3:", "48:Z3:"), "not a sha-256 hash"));
  EXPECT_TRUE(refused_with(replace(sdp, "48:D3:", "48::D3"), "not a sha-256 hash"));
  // A valid hash we cannot check the certificate with is as good as none.
  EXPECT_TRUE(
      refused_with(replace(sdp, kFingerprint,
                           "a=fingerprint:md5 48:D3:56:D9:01:8D:1E:21:18:1F:54:89:F7:8B:A3:41\r\n"),
                   "without a=fingerprint"));
  // Upper-case hash names and lower-case hex, as some stacks send them, are fine.
  EXPECT_EQ(check_remote_sdp(replace(sdp, "sha-256 48:D3", "SHA-256 48:d3"), {}), "");
  // Media-level fingerprints (Chromium) count for their m-line.
  EXPECT_EQ(check_remote_sdp(chromium(), {}), "");
  EXPECT_TRUE(refused_with(replace_all(chromium(), "a=fingerprint:sha-256 48", "a=x:sha-256 48"),
                           "without a=fingerprint"));
}

TEST(RemoteSdp, PayloadTypesAre0To127WithoutDuplicates) {
  std::string sdp = chromium();
  EXPECT_TRUE(refused_with(replace(sdp, "SAVPF 111 63", "SAVPF 128 63"), "outside 0-127"));
  EXPECT_TRUE(refused_with(replace(sdp, "SAVPF 111 63", "SAVPF -1 63"), "outside 0-127"));
  EXPECT_TRUE(refused_with(replace(sdp, "SAVPF 111 63", "SAVPF opus 63"), "outside 0-127"));
  EXPECT_TRUE(refused_with(replace(sdp, "SAVPF 111 63", "SAVPF 111 111"), "duplicate payload"));
  EXPECT_TRUE(refused_with(replace(sdp, "a=rtpmap:9 G722", "a=rtpmap:111 G722"), "two a=rtpmap"));
  EXPECT_TRUE(refused_with(replace(sdp, "a=rtpmap:9 G722", "a=rtpmap:300 G722"), "outside 0-127"));
  EXPECT_TRUE(
      refused_with(replace(sdp, "a=fmtp:111 minptime", "a=fmtp:x minptime"), "outside 0-127"));
  EXPECT_TRUE(refused_with(replace(sdp, " 120\r\n", " 120 \r\n"), "outside 0-127"));
}

TEST(RemoteSdp, OnlyDtlsTransportsAndKnownMedia) {
  std::string sdp = offer_with_mlines(1);
  // Plain RTP would be unencrypted.
  EXPECT_TRUE(refused_with(replace(sdp, "UDP/TLS/RTP/SAVPF", "RTP/AVP"), "transport RTP/AVP"));
  EXPECT_TRUE(refused_with(replace(sdp, "m=audio", "m=text"), "unknown media"));
  EXPECT_TRUE(refused_with(replace(sdp, "m=audio 9 UDP", "m=audio x UDP"), "port"));
  EXPECT_TRUE(refused_with(replace(sdp, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9"),
                           "malformed m-line"));
  // A data channel m-line, as browsers add it, is fine.
  std::string data = sdp +
                     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
                     "a=mid:9\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
                     "a=sctp-port:5000\r\n";
  EXPECT_EQ(check_remote_sdp(data, {}), "");
  EXPECT_TRUE(refused_with(replace(data, "UDP/DTLS/SCTP", "UDP/TLS/RTP/SAVPF"), "transport"));
}

TEST(RemoteSdp, IceCredentialsAreNeededAndWellFormed) {
  std::string sdp = offer_with_mlines(1);
  EXPECT_TRUE(refused_with(replace(sdp, "a=ice-ufrag:abcd\r\n", ""), "a=ice-ufrag and a=ice-pwd"));
  EXPECT_TRUE(
      refused_with(replace(sdp, "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", ""), "a=ice-pwd"));
  EXPECT_TRUE(refused_with(replace(sdp, "ice-pwd:abcdefghijklmnopqrstuvwx", "ice-pwd:short"),
                           "malformed a=ice-pwd"));
  EXPECT_TRUE(
      refused_with(replace(sdp, "ice-ufrag:abcd", "ice-ufrag:ab"), "malformed a=ice-ufrag"));
  EXPECT_TRUE(refused_with(replace(sdp, "ice-ufrag:abcd", "ice-ufrag:ab;d"), "malformed"));
  EXPECT_TRUE(refused_with(replace(sdp, "ice-ufrag:abcd", "ice-ufrag:" + std::string(257, 'a')),
                           "malformed a=ice-ufrag"));
  // Session-level credentials (Firefox puts them on the m-lines, others at the top) count.
  std::string session = replace(replace(sdp, "a=ice-ufrag:abcd\r\n", ""), "t=0 0\r\n",
                                "t=0 0\r\na=ice-ufrag:abcd\r\n");
  EXPECT_EQ(check_remote_sdp(session, {}), "");
  // A rejected m-line (port 0) has no transport of its own.
  std::string rejected = sdp + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n";
  EXPECT_EQ(check_remote_sdp(rejected, {}), "");
  EXPECT_TRUE(refused_with(replace(rejected, "m=video 0", "m=video 9"), "a=ice-ufrag"));
}

TEST(RemoteSdp, MalformedTextIsRefused) {
  std::string sdp = offer_with_mlines(1);
  EXPECT_TRUE(refused_with("", "empty"));
  EXPECT_TRUE(refused_with("garbage", "malformed SDP line"));
  EXPECT_TRUE(refused_with("v=1\r\n", "v=0"));
  EXPECT_TRUE(refused_with("v=0\r\ns=-\r\n", "no media"));
  EXPECT_TRUE(refused_with(replace(sdp, "s=-", std::string("s=\0-", 4)), "control characters"));
  EXPECT_TRUE(refused_with(replace(sdp, "s=-", "s=\x1b[2J"), "control characters"));
  EXPECT_TRUE(refused_with(replace(sdp, "s=-", "S=-"), "malformed SDP line"));
  EXPECT_TRUE(refused_with(replace(sdp, "a=setup:actpass", "a=setup:everything"), "a=setup"));
  EXPECT_TRUE(refused_with(replace(sdp, "a=mid:0", "a=mid:"), "a=mid"));
}

TEST(RemoteSdp, MidsAreUniqueAndBundleNamesThem) {
  std::string two = offer_with_mlines(2);
  EXPECT_TRUE(refused_with(replace(two, "a=mid:1", "a=mid:0"), "two m-lines with a=mid:0"));
  std::string bundled = replace(two, "t=0 0\r\n", "t=0 0\r\na=group:BUNDLE 0 1\r\n");
  EXPECT_EQ(check_remote_sdp(bundled, {}), "");
  EXPECT_TRUE(refused_with(replace(bundled, "BUNDLE 0 1", "BUNDLE 0 7"), "unknown mid"));
  EXPECT_TRUE(refused_with(replace(bundled, "BUNDLE 0 1", "BUNDLE 0 1 0"), "longer"));
  EXPECT_TRUE(refused_with(replace(bundled, "BUNDLE 0 1", "BUNDLE 0  1"), "malformed a=group"));
}

TEST(RemoteSdp, CandidatesInTheSdpAreCheckedAndCounted) {
  std::string cand = "a=candidate:1 1 udp 2122260223 10.77.0.1 50000 typ host\r\n";
  SdpView view;
  EXPECT_EQ(check_remote_sdp(offer_with_mlines(1, cand + cand), {}, &view), "");
  EXPECT_EQ(view.candidates, 2u);
  RemoteLimits limits;
  limits.max_candidates = 3;
  EXPECT_EQ(check_remote_sdp(offer_with_mlines(1, cand + cand + cand), limits), "");
  EXPECT_TRUE(
      refused_with(offer_with_mlines(2, cand + cand), "max-candidates (3) candidates", limits));
  EXPECT_TRUE(refused_with(
      offer_with_mlines(1, "a=candidate:1 1 udp 1 evil.example 1 typ host\r\n"), "mDNS"));
}

// ---- candidates ----

TEST(RemoteCandidate, BrowserCandidatesAreAccepted) {
  for (const char* c : {
           "candidate:1467250027 1 udp 2122260223 10.77.0.2 46154 typ host generation 0 ufrag "
           "4sjq network-id 1",
           "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.77.0.2 "
           "rport 46154 generation 0 ufrag 4sjq network-cost 999",
           "candidate:1 1 TCP 1518280447 10.77.0.2 9 typ host tcptype active",
           "candidate:2 1 udp 2122262783 2001:db8::1 58000 typ host",
           "candidate:3 1 udp 2122262783 ::ffff:10.77.0.2 58000 typ host",
           "candidate:4 1 udp 2113937151 3ae4b04c-3a71-4b51-9e7e-77a4c3e0e0f8.local 54300 typ host "
           "generation 0",
           "candidate:5 1 udp 41885439 198.51.100.1 3478 typ relay raddr 0.0.0.0 rport 0",
           "a=candidate:6 2 UDP 2122260222 10.77.0.2 46155 typ host",
       }) {
    EXPECT_EQ(check_candidate(c, {}), "") << c;
  }
}

TEST(RemoteCandidate, GarbageIsRefused) {
  RemoteLimits limits;
  std::string ok = "candidate:1 1 udp 2122260223 10.77.0.2 46154 typ host";
  EXPECT_EQ(check_candidate(ok, limits), "");
  EXPECT_EQ(check_candidate("garbage", limits), "not a candidate: line");
  EXPECT_EQ(check_candidate("", limits), "not a candidate: line");
  EXPECT_EQ(check_candidate("candidate:", limits), "malformed candidate");
  EXPECT_NE(check_candidate(ok + std::string(600, ' '), limits).find("max-candidate-size"),
            std::string::npos);
  EXPECT_NE(check_candidate(ok + " generation", limits), "");          // odd extension
  EXPECT_NE(check_candidate(ok + "\r\na=fingerprint:x", limits), "");  // injection
  EXPECT_NE(check_candidate(replace(ok, "udp", "sctp"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, " 1 udp", " 0 udp"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "46154", "70000"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "2122260223", "99999999999"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "typ host", "typ evil"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "typ host", "type host"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "10.77.0.2", "10.77.0.256"), limits), "");
  EXPECT_NE(check_candidate(replace(ok, "10.77.0.2", "1:2:3::4::5"), limits), "");
  // A host name would make us resolve a name of the remote's choosing.
  EXPECT_NE(
      check_candidate(replace(ok, "10.77.0.2", "attacker.example.com"), limits).find("mDNS .local"),
      std::string::npos);
  EXPECT_NE(check_candidate(replace(ok, "10.77.0.2", ".local"), limits), "");
  EXPECT_NE(check_candidate(ok + " raddr evil.example rport 1", limits), "");
  EXPECT_NE(check_candidate(ok + " raddr 10.0.0.1 rport 99999", limits), "");
  limits.max_candidate_bytes = ok.size() - 1;
  EXPECT_NE(check_candidate(ok, limits), "");
}

// ---- per-peer admission ----

namespace {
constexpr std::int64_t kSecond = 1'000'000;
AdmissionConfig config(double rate = 1, unsigned burst = 10) {
  AdmissionConfig c;
  c.rate_per_second = rate;
  c.burst = burst;
  c.connect_timeout_us = 10 * kSecond;
  c.backoff_us = 60 * kSecond;
  return c;
}
}  // namespace

TEST(PeerAdmission, OffersBeyondTheBurstAreDroppedUntilTokensRefill) {
  PeerAdmission a(config(1, 10));
  std::int64_t now = 5 * kSecond;
  int accepted = 0;
  for (int i = 0; i < 1000; ++i)
    accepted += a.offer("mallory", now) == PeerAdmission::Verdict::kAccept;
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(a.offer("mallory", now), PeerAdmission::Verdict::kRateLimited);
  // Another caller is not affected.
  EXPECT_EQ(a.offer("alice", now), PeerAdmission::Verdict::kAccept);
  // One token a second.
  EXPECT_EQ(a.offer("mallory", now + kSecond / 2), PeerAdmission::Verdict::kRateLimited);
  EXPECT_EQ(a.offer("mallory", now + kSecond), PeerAdmission::Verdict::kAccept);
  EXPECT_EQ(a.offer("mallory", now + kSecond), PeerAdmission::Verdict::kRateLimited);
  // Over a minute of flooding at 1,000 offers/s, about one a second gets through.
  accepted = 0;
  for (int i = 0; i < 60'000; ++i) {
    accepted += a.offer("mallory", now + 2 * kSecond + i * 1000) == PeerAdmission::Verdict::kAccept;
  }
  EXPECT_GE(accepted, 59);
  EXPECT_LE(accepted, 61);
}

TEST(PeerAdmission, ZeroRateMeansNoLimit) {
  PeerAdmission a(config(0, 10));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.offer("x", 1), PeerAdmission::Verdict::kAccept);
  PeerAdmission b(config(1, 0));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(b.offer("x", 1), PeerAdmission::Verdict::kAccept);
}

TEST(PeerAdmission, DefaultsLetAPersonRedialButNotAFlood) {
  PeerAdmission a;  // 5/s, burst 20
  std::int64_t now = kSecond;
  int accepted = 0;
  for (int i = 0; i < 10'000; ++i) {
    accepted += a.offer("flood", now + i * 100) == PeerAdmission::Verdict::kAccept;  // 10,000/s
  }
  // A second of flooding: the burst and (almost) one second's rate.
  EXPECT_GE(accepted, 20 + 4);
  EXPECT_LE(accepted, 20 + 5);
  // Fifty calls one after the other, one every 300 ms, all get through.
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.offer("tester", now + i * 300'000), PeerAdmission::Verdict::kAccept) << i;
  }
}

TEST(PeerAdmission, ACallerWhoseCallTimedOutUnconnectedIsBusyForTheBackoff) {
  PeerAdmission a(config());
  std::int64_t now = 100 * kSecond;
  ASSERT_EQ(a.offer("squatter", now), PeerAdmission::Verdict::kAccept);
  now += 10 * kSecond;
  a.call_ended("squatter", false, 10 * kSecond, now);
  EXPECT_TRUE(a.in_backoff("squatter", now));
  EXPECT_EQ(a.offer("squatter", now + kSecond), PeerAdmission::Verdict::kBackoff);
  EXPECT_EQ(a.offer("alice", now + kSecond), PeerAdmission::Verdict::kAccept);
  EXPECT_EQ(a.offer("squatter", now + 59 * kSecond), PeerAdmission::Verdict::kBackoff);
  EXPECT_EQ(a.offer("squatter", now + 60 * kSecond), PeerAdmission::Verdict::kAccept);
}

TEST(PeerAdmission, CallsCutShortBeforeConnectingAddUp) {
  // Hanging up just before the timeout and offering again must not keep the slot for good.
  PeerAdmission a(config());
  std::int64_t now = 100 * kSecond;
  a.call_ended("squatter", false, 4 * kSecond, now);
  EXPECT_FALSE(a.in_backoff("squatter", now));
  a.call_ended("squatter", false, 4 * kSecond, now + 4 * kSecond);
  EXPECT_FALSE(a.in_backoff("squatter", now + 4 * kSecond));
  a.call_ended("squatter", false, 4 * kSecond, now + 8 * kSecond);
  EXPECT_TRUE(a.in_backoff("squatter", now + 8 * kSecond));
  // A caller who connects is forgiven what came before.
  a.call_ended("alice", false, 9 * kSecond, now);
  a.call_ended("alice", true, 0, now + kSecond);
  a.call_ended("alice", false, 2 * kSecond, now + 2 * kSecond);
  EXPECT_FALSE(a.in_backoff("alice", now + 2 * kSecond));
  // Unconnected time older than the backoff is forgotten.
  a.call_ended("bob", false, 9 * kSecond, now);
  a.call_ended("bob", false, 2 * kSecond, now + 61 * kSecond);
  EXPECT_FALSE(a.in_backoff("bob", now + 61 * kSecond));
}

TEST(PeerAdmission, TrackedPeersAreBounded) {
  AdmissionConfig c = config();
  c.max_peers = 100;
  PeerAdmission a(c);
  std::int64_t now = kSecond;
  for (int i = 0; i < 10'000; ++i) {
    a.offer("user" + std::to_string(i), now);
    ASSERT_LE(a.tracked(), 100u);
  }
  // Idle entries go first: a peer in backoff survives a flood of new names.
  a.call_ended("squatter", false, 10 * kSecond, now);
  for (int i = 0; i < 10'000; ++i) a.offer("later" + std::to_string(i), now + 20 * kSecond);
  EXPECT_TRUE(a.in_backoff("squatter", now + 20 * kSecond));
  // Once every entry is idle again they are dropped.
  a.offer("last", now + 200 * kSecond);
  EXPECT_LE(a.tracked(), 2u);
}

TEST(PeerAdmission, RefusalsToAllPeersTogetherAreBounded) {
  AdmissionConfig c = config();
  c.refusal_rate = 10;
  c.refusal_burst = 40;
  PeerAdmission a(c);
  std::int64_t now = kSecond;
  int sent = 0;
  for (int i = 0; i < 1000; ++i) sent += a.refusal_allowed(now);
  EXPECT_EQ(sent, 40);
  EXPECT_FALSE(a.refusal_allowed(now + kSecond / 20));
  EXPECT_TRUE(a.refusal_allowed(now + kSecond / 10));
  // 0.9 s later, then ten seconds of flooding: what refilled meanwhile (9) and ten a second,
  // far under the server's 50/s.
  sent = 0;
  for (int i = 0; i < 100'000; ++i) sent += a.refusal_allowed(now + kSecond + i * 100);
  EXPECT_GE(sent, 9 + 99);
  EXPECT_LE(sent, 9 + 100);
  c.refusal_rate = 0;
  PeerAdmission unlimited(c);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.refusal_allowed(now));
}

TEST(LogThrottle, OncePerIntervalCountingTheRest) {
  LogThrottle t(kSecond);
  EXPECT_TRUE(t.allow(0));
  EXPECT_EQ(t.suppressed(), 0u);
  for (int i = 1; i <= 99; ++i) EXPECT_FALSE(t.allow(i * 1000));
  EXPECT_TRUE(t.allow(kSecond));
  EXPECT_EQ(t.suppressed(), 99u);
  EXPECT_EQ(t.suppressed(), 0u);
}
