// Hostile remotes: a raw protocol client ("mallory") sends what no real peer would (huge or
// forged SDPs, candidate and offer floods, a call that never connects); each pattern is
// bounded, and afterwards a real caller must get a working call and the pipeline's fds,
// threads and RSS must be back near where they were. Inside tests/netns-run.sh.
#include <gtest/gtest.h>
#include <json-glib/json-glib.h>
#include <nice/nice.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "client.h"
#include "peer.h"
#include "protocol.h"
#include "raw-client.h"

using test::Peer;
using test::PeerOptions;
using test::RawClient;
using test::ServerProcess;

namespace {

std::string json_string(const std::string& s) {
  JsonNode* node = json_node_init_string(json_node_alloc(), s.c_str());
  std::string out = signaling::protocol::to_text(node);
  json_node_unref(node);
  return out;
}

std::string offer_message(const std::string& target, const std::string& sdp) {
  return R"({"type":"video-offer","target":")" + target + R"(","sdp":{"type":"offer","sdp":)" +
         json_string(sdp) + "}}";
}

std::string candidate_message(const std::string& target, const std::string& candidate) {
  return R"({"type":"new-ice-candidate","target":")" + target + R"(","candidate":{"candidate":)" +
         json_string(candidate) + R"(,"sdpMid":"0","sdpMLineIndex":0}})";
}

std::string hang_up_message(const std::string& target) {
  return R"({"type":"hang-up","target":")" + target + R"("})";
}

// Chromium 156's offer (a real browser's, with a valid fingerprint), CRLF as on the wire.
std::string chromium_offer() {
  std::ifstream f(std::string(TEST_DATA_DIR) + "/chromium-156-offer-audio-video.sdp");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string out;
  for (char c : ss.str()) {
    if (c == '\r') continue;
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const char* kFingerprint =
    "a=fingerprint:sha-256 "
    "48:D3:56:D9:01:8D:1E:21:18:1F:54:89:F7:8B:A3:41:F3:E8:1D:01:63:95:AA:47:9B:9B:B2:F4:11:35:81:"
    "C5\r\n";

// `mlines` audio m-lines, without BUNDLE (webrtcbin builds a transport for each) or all in
// one BUNDLE group.
std::string offer_with_mlines(unsigned mlines, bool bundle = false) {
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
         "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";
  }
  return s;
}

int count_messages(Peer& p, const std::string& name, std::map<std::string, std::string> fields) {
  int n = 0;
  while (p.wait_message(name, fields, 0)) ++n;  // taken; the Peer keeps them
  return n;
}

// Waits for bob's message (and takes it) while the raw client's sends and receives go on.
bool wait_for(RawClient& c, Peer& p, const std::string& name,
              std::map<std::string, std::string> fields, int timeout_ms = 15000) {
  if (!c.run_until([&] { return p.has_message(name, fields); }, timeout_ms)) return false;
  p.wait_message(name, fields, 0);  // taken; the Peer keeps it
  return true;
}

// The reason of bob's next webrtccall-call-ended for `peer`, pumping the raw client.
std::string ended(RawClient& c, Peer& p, const std::string& peer, int timeout_ms = 15000) {
  c.run_until([&] { return p.has_message("webrtccall-call-ended", {{"peer", peer}}); }, timeout_ms);
  GstStructure* s = p.wait_message("webrtccall-call-ended", {{"peer", peer}}, 0);
  if (!s) return "(no webrtccall-call-ended)";
  std::string reason = gst_structure_get_string(s, "reason");
  return reason;
}

std::string ended_reason(Peer& p, const std::string& peer, int timeout_ms = 10000) {
  GstStructure* s = p.wait_message("webrtccall-call-ended", {{"peer", peer}}, timeout_ms);
  if (!s) return "(no webrtccall-call-ended)";
  std::string reason = gst_structure_get_string(s, "reason");
  return reason;
}

// Remote candidates bob's ICE agent holds, over all its calls' streams.
unsigned remote_candidates(Peer& p) {
  unsigned n = 0;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(p.element()));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) {
      GstObject* ice = nullptr;
      g_object_get(e, "ice-agent", &ice, nullptr);
      NiceAgent* agent = nullptr;
      if (ice && g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
        g_object_get(ice, "agent", &agent, nullptr);
      }
      for (guint stream = 1; agent && stream <= 32; ++stream) {
        for (guint component = 1; component <= 2; ++component) {
          GSList* list = nice_agent_get_remote_candidates(agent, stream, component);
          n += g_slist_length(list);
          g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
        }
      }
      if (agent) g_object_unref(agent);
      if (ice) gst_object_unref(ice);
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

struct Usage {
  int fds, threads;
  long memory_kib;
};
Usage usage() {
  test::wait_settled();
  return {test::count_fds(), test::count_threads(), test::memory_kib()};
}

// What the pipeline may hold more after the hostile pattern and one real call have come and
// gone: GStreamer keeps a few pool threads and caches (the first call's plugins, the DTLS
// certificate) beyond the first call, none per call.
constexpr int kSlackFds = 8;
constexpr int kSlackThreads = 8;
constexpr long kSlackMemoryKib = 24 * 1024;  // RSS (allocated bytes under ASan)

void expect_back_to(const Usage& before, const char* what) {
  Usage after = usage();
  std::printf("%s: fds %d -> %d, threads %d -> %d, memory %ld -> %ld KiB\n", what, before.fds,
              after.fds, before.threads, after.threads, before.memory_kib, after.memory_kib);
  EXPECT_LE(after.fds, before.fds + kSlackFds) << what;
  EXPECT_LE(after.threads, before.threads + kSlackThreads) << what;
  EXPECT_LE(after.memory_kib, before.memory_kib + kSlackMemoryKib) << what;
  if (after.fds > before.fds + kSlackFds) test::show_fds();
}

}  // namespace

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << "webrtc-call-server did not start"; }

  // A real caller gets a working call to bob (frames decoded on both ends), then hangs up.
  void real_call_works(Peer& bob) {
    // A new name each time: the last caller's registration may not be gone yet.
    std::string name = "alice" + std::to_string(++callers_);
    Peer alice(name, server_.ws_url(), {.peer = "bob"});
    ASSERT_TRUE(alice.play());
    ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 40000));
    int v = bob.video_buffers, a = bob.audio_buffers;
    EXPECT_TRUE(bob.wait_until(
        [&] { return bob.video_buffers >= v + 20 && bob.audio_buffers >= a + 20; }, 20000));
    EXPECT_TRUE(alice.wait_until([&] { return alice.video_buffers >= 20; }, 20000));
    alice.hang_up("bob");
    EXPECT_EQ(ended_reason(bob, name), name + " hung up");
    EXPECT_TRUE(bob.wait_until([&] { return bob.src_pads() == 0; }, 5000));
  }

  // The baseline: bob has had one real call already (plugins loaded, certificate made).
  Usage warm_up(Peer& bob) {
    real_call_works(bob);
    return usage();
  }

  ServerProcess server_{{"--max-rate", "100000", "--max-burst", "100000"}};
  int callers_ = 0;
};

TEST_F(Hostile, OfferWithHundredsOfUnbundledMlinesIsRefusedBeforeWebrtcbin) {
  // A larger max-sdp-size, so that the m-line count is what refuses 600 m-lines.
  Peer bob("bob", server_.ws_url(), {.extra = "max-sdp-size=200000"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Usage before = warm_up(bob);
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));

  // 600 m-lines killed the pipeline (fd limit): refused with our reason, invalid-sdp to him.
  std::string sdp = offer_with_mlines(600);
  ASSERT_LT(sdp.size(), 256u * 1024);  // within the server's message limit
  mallory.send(offer_message("bob", sdp));
  std::string reason = ended(mallory, bob, "mallory");
  EXPECT_NE(reason.find("max-mlines (16)"), std::string::npos) << reason;
  EXPECT_TRUE(mallory.run_until([&] { return !mallory.hang_ups.empty(); }));
  EXPECT_EQ(mallory.hang_ups, std::vector<std::string>{"invalid-sdp"});

  // Five unbundled need five transports: over max-transports (4).
  mallory.hang_ups.clear();
  mallory.send(offer_message("bob", offer_with_mlines(5)));
  reason = ended(mallory, bob, "mallory");
  EXPECT_NE(reason.find("max-transports is 4"), std::string::npos) << reason;
  EXPECT_TRUE(mallory.run_until([&] { return !mallory.hang_ups.empty(); }));
  EXPECT_EQ(mallory.hang_ups, std::vector<std::string>{"invalid-sdp"});

  // 16 in one BUNDLE group (one transport) are allowed (the default) and answered.
  count_messages(bob, "webrtccall-call-started", {{"peer", "mallory"}});  // the refused ones'
  mallory.send(offer_message("bob", offer_with_mlines(16, true)));
  EXPECT_TRUE(wait_for(mallory, bob, "webrtccall-call-started", {{"peer", "mallory"}}));
  // What one such call costs (a figure, not an assertion): a transport per m-line.
  mallory.pump(1000);
  std::printf("a 16 m-line bundled call: fds %d -> %d, threads %d -> %d\n", before.fds,
              test::count_fds(), before.threads, test::count_threads());
  mallory.send(hang_up_message("bob"));
  EXPECT_EQ(ended(mallory, bob, "mallory"), "mallory hung up");

  // Over max-sdp-size, the size alone refuses it.
  mallory.hang_ups.clear();
  mallory.send(offer_message(
      "bob", offer_with_mlines(16, true) + "a=x:" + std::string(210000, 'a') + "\r\n"));
  reason = ended(mallory, bob, "mallory");
  EXPECT_NE(reason.find("max-sdp-size is 200000"), std::string::npos) << reason;

  real_call_works(bob);
  expect_back_to(before, "after 600 m-lines");
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(Hostile, FingerprintWithoutAHashIsRefusedByUsNotByWebrtcbin) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Usage before = warm_up(bob);
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));

  // Chromium's offer with both fingerprint lines cut to the hash name: webrtcbin 1.22 takes
  // it (and would never authenticate the peer); only our check refuses it.
  std::string sdp = chromium_offer();
  for (std::size_t p = sdp.find("a=fingerprint:sha-256 "); p != std::string::npos;
       p = sdp.find("a=fingerprint:sha-256 ", p)) {
    sdp.erase(p + 21, sdp.find("\r\n", p) - (p + 21));
  }
  ASSERT_NE(sdp.find("a=fingerprint:sha-256\r\n"), std::string::npos);
  mallory.send(offer_message("bob", sdp));
  // Well before any timeout could end the call for another reason.
  std::string reason = ended(mallory, bob, "mallory", 5000);
  EXPECT_NE(reason.find("a=fingerprint without a hash refused"), std::string::npos) << reason;
  EXPECT_TRUE(mallory.run_until([&] { return !mallory.hang_ups.empty(); }));
  EXPECT_EQ(mallory.hang_ups, std::vector<std::string>{"invalid-sdp"});

  real_call_works(bob);
  expect_back_to(before, "after the fingerprint without a hash");
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(Hostile, CandidateFloodIsCutAtMaxCandidates) {
  Peer bob("bob", server_.ws_url(), {.extra = "connect-timeout=8"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Usage before = warm_up(bob);
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));

  // A valid offer that never does ICE, then 5,000 candidates: garbage, oversized, host names
  // (we would resolve them), and valid ones to addresses nobody has.
  mallory.send(offer_message("bob", chromium_offer()));
  ASSERT_TRUE(wait_for(mallory, bob, "webrtccall-call-started", {{"peer", "mallory"}}));
  for (int i = 0; i < 5000; ++i) {
    std::string c;
    switch (i % 4) {
      case 0:
        c = "garbage " + std::to_string(i);
        break;
      case 1:
        c = "candidate:1 1 udp 2122260223 10.77.0.2 " + std::to_string(1000 + i) + " typ host" +
            std::string(4000, 'x');
        break;
      case 2:
        c = "candidate:1 1 udp 2122260223 host" + std::to_string(i) + ".example.com 9 typ host";
        break;
      default:
        c = "candidate:" + std::to_string(i) + " 1 udp 2122260223 10.77.9." +
            std::to_string(i % 250 + 1) + " " + std::to_string(1000 + i) + " typ host";
    }
    mallory.send(candidate_message("bob", c));
    if (i % 500 == 0) mallory.pump(5);
  }
  // All of them processed: a last one, and bob's webrtcbin holds at most max-candidates.
  mallory.send(candidate_message("bob", "candidate:9 1 udp 1 10.77.0.9 9 typ host"));
  mallory.pump(2000);
  unsigned held = remote_candidates(bob);
  std::printf("remote candidates held after the flood: %u\n", held);
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, 64u);
  EXPECT_EQ(ended(mallory, bob, "mallory"), "could not connect to mallory");

  real_call_works(bob);
  expect_back_to(before, "after 5,000 candidates");
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(Hostile, OfferAndHangUpChurnFromOnePeerIsRateLimited) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Usage before = warm_up(bob);
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));

  // 300 offer/hang-up cycles as fast as the socket takes them, then 3,000 bare hang-ups.
  auto start = std::chrono::steady_clock::now();
  std::string offer = offer_message("bob", chromium_offer());
  for (int i = 0; i < 300; ++i) {
    mallory.send(offer);
    mallory.send(hang_up_message("bob"));
    if (i % 50 == 0) mallory.pump(5);
  }
  for (int i = 0; i < 3000; ++i) mallory.send(hang_up_message("bob"));
  mallory.pump(2000);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int calls = count_messages(bob, "webrtccall-call-started", {{"peer", "mallory"}});
  std::printf("%d of 300 offers made a call in %.1f s\n", calls, seconds);
  // The burst (20), then five a second.
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 20 + static_cast<int>(5 * seconds) + 1);

  real_call_works(bob);
  expect_back_to(before, "after 300 offer/hang-up cycles");
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(Hostile, BusyRepliesToAnOfferFloodDoNotGetUsThrottledByTheServer) {
  // Server defaults (50 messages/s, burst 100): were bob to answer each offer with "busy",
  // a flood from a few names would make the server refuse bob's own messages.
  ServerProcess server;
  ASSERT_TRUE(server.ok());
  Peer bob("bob", server.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 20000));
  // Six names, each within its offer-burst and its own server burst: 120 offers at once,
  // 60 more a second later.
  std::vector<std::unique_ptr<RawClient>> callers;
  for (int i = 0; i < 6; ++i) {
    callers.push_back(std::make_unique<RawClient>(server.ws_url(), "mallory" + std::to_string(i)));
    ASSERT_TRUE(callers.back()->registered_with("bob"));
  }
  std::string offer = offer_message("bob", chromium_offer());
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20 / (round + 1); ++i) {
      for (auto& c : callers) c->send(offer);
    }
    callers[0]->pump(1000);
  }
  callers[0]->pump(2000);
  std::size_t replies = 0;
  for (auto& c : callers) {
    replies += c->hang_ups.size();
    for (const std::string& r : c->hang_ups) EXPECT_EQ(r, "busy");
  }
  std::printf("6 callers got %zu busy replies for 180 offers\n", replies);
  EXPECT_GE(replies, 1u);
  EXPECT_LE(replies, 40u + 10 * 4 + 1);  // refusal-rate: burst 40, then 10/s over ~4 s
  EXPECT_FALSE(bob.has_message("webrtccall-server-error", {}));
  EXPECT_FALSE(bob.has_message("webrtccall-disconnected", {}));
  // Alice's call went on throughout.
  int v = alice.video_buffers;
  EXPECT_TRUE(alice.wait_until([&] { return alice.video_buffers > v + 20; }, 10000));
  EXPECT_FALSE(bob.has_message("webrtccall-call-ended", {}));
}

TEST_F(Hostile, CallThatNeverConnectsFreesTheOnlySlotAndItsCallerGetsBusy) {
  Peer bob("bob", server_.ws_url(), {.extra = "connect-timeout=3 unconnected-backoff=60"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Usage before = warm_up(bob);
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));

  // A valid offer that never does ICE takes max-calls=1; re-offering every half second does
  // not keep it.
  std::string offer = offer_message("bob", chromium_offer());
  mallory.send(offer);
  ASSERT_TRUE(wait_for(mallory, bob, "webrtccall-call-started", {{"peer", "mallory"}}));
  auto start = std::chrono::steady_clock::now();
  std::string reason;
  mallory.run_until(
      [&] {
        if (bob.has_message("webrtccall-call-ended", {{"peer", "mallory"}})) return true;
        mallory.send(offer);
        mallory.pump(500);
        return false;
      },
      10000);
  reason = ended_reason(bob, "mallory", 0);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("the squatter's call ended after %.1f s: %s\n", took, reason.c_str());
  EXPECT_EQ(reason, "could not connect to mallory");
  EXPECT_LT(took, 3 + 2.5);  // connect-timeout, checked every second
  // Mallory is told (the "timeout" hang-up); from now on it is busy for the backoff, and a
  // real caller gets through.
  EXPECT_TRUE(mallory.run_until([&] { return !mallory.hang_ups.empty(); }));
  EXPECT_EQ(mallory.hang_ups, std::vector<std::string>{"timeout"});
  mallory.hang_ups.clear();
  mallory.send(offer);
  EXPECT_TRUE(mallory.run_until([&] { return !mallory.hang_ups.empty(); }));
  EXPECT_EQ(mallory.hang_ups, std::vector<std::string>{"busy"});
  EXPECT_FALSE(bob.has_message("webrtccall-call-started", {{"peer", "mallory"}}));
  real_call_works(bob);
  expect_back_to(before, "after the squatter");
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(Hostile, RemoteThatNeverAnswersOurCallEndsAfterAnswerTimeout) {
  // The other direction: bob calls mallory, who takes the offer and never answers. The ring
  // time is answer-timeout (a person may take a while), not connect-timeout.
  Peer bob("bob", server_.ws_url(), {.extra = "answer-timeout=3 connect-timeout=1"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.registered_with("bob"));
  bob.call("mallory");
  ASSERT_TRUE(wait_for(mallory, bob, "webrtccall-call-started", {{"peer", "mallory"}}));
  auto start = std::chrono::steady_clock::now();
  std::string reason = ended(mallory, bob, "mallory", 10000);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("unanswered call ended after %.1f s: %s\n", took, reason.c_str());
  EXPECT_EQ(reason, "no answer from mallory");
  EXPECT_GE(took, 2.5);  // not connect-timeout's 1 s
  EXPECT_LT(took, 3 + 2.5);
  EXPECT_TRUE(bob.errors().empty());
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
