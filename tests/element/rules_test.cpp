// Rules of the webrtccall element that a call can succeed without: who answers in glare,
// max-calls, one DTLS certificate per process, and properties that must reach webrtcbin and
// libnice. Each test here failed on a deliberate bug that the rest of the suite let through.
// Elements talk through the in-process fake signaller, whose hub logs every message sent;
// their WebRTC peers run in the test's network namespace (tests/netns-run.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "fake-signaller.h"
#include "peer.h"

using test::HubMessage;
using test::Peer;

namespace {

bool received(Peer& p, int video, int audio, int timeout_ms = 20000) {
  return p.wait_until([&] { return p.video_buffers >= video && p.audio_buffers >= audio; },
                      timeout_ms);
}

std::vector<HubMessage> sent(const std::string& type, const std::string& from = "",
                             const std::string& to = "") {
  std::vector<HubMessage> out;
  for (HubMessage& m : test::fake_hub_log()) {
    if (m.type == type && (from.empty() || m.from == from) && (to.empty() || m.to == to)) {
      out.push_back(std::move(m));
    }
  }
  return out;
}

std::string describe_log() {
  std::ostringstream out;
  for (const HubMessage& m : test::fake_hub_log()) {
    if (m.type == "candidate") continue;
    out << "\n  " << m.from << " -> " << m.to << ": " << m.type;
    if (m.type == "hang-up") out << " (" << m.detail << ")";
  }
  return out.str();
}

// The a=fingerprint values of an SDP (session and media level), in order.
std::vector<std::string> fingerprints(const std::string& sdp) {
  std::vector<std::string> out;
  std::istringstream in(sdp);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("a=fingerprint:", 0) == 0) out.push_back(line.substr(14));
  }
  return out;
}

// The first element made by `factory` inside `bin`, at any depth (a new reference), or null.
GstElement* find_inside(GstElement* bin, const char* factory) {
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  GstElement* found = nullptr;
  bool done = false;
  while (!done && !found) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK: {
        auto* e = GST_ELEMENT(g_value_get_object(&item));
        GstElementFactory* f = gst_element_get_factory(e);
        if (f && g_strcmp0(GST_OBJECT_NAME(f), factory) == 0)
          found = GST_ELEMENT(gst_object_ref(e));
        g_value_reset(&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync(it);
        break;
      default:
        done = true;
        break;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

// What the live call's webrtcbin and its ICE agent were configured with.
struct WebrtcbinSettings {
  bool found = false;
  guint latency = 0, rtpbin_latency = 0;
  bool has_rtpbin = false;
  bool has_upnp = false;
  gboolean upnp = TRUE;
  bool has_ice_tcp = false;
  gboolean ice_tcp = FALSE;
};

WebrtcbinSettings inspect_webrtcbin(Peer& p) {
  WebrtcbinSettings s;
  GstElement* webrtc = find_inside(p.element(), "webrtcbin");
  if (!webrtc) return s;
  s.found = true;
  g_object_get(webrtc, "latency", &s.latency, nullptr);
  if (GstElement* rtpbin = find_inside(webrtc, "rtpbin")) {
    s.has_rtpbin = true;
    g_object_get(rtpbin, "latency", &s.rtpbin_latency, nullptr);
    gst_object_unref(rtpbin);
  }
  GstObject* ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (ice) {
    GObject* agent = nullptr;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
      g_object_get(ice, "agent", &agent, nullptr);
    }
    if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp")) {
      s.has_upnp = true;
      g_object_get(agent, "upnp", &s.upnp, nullptr);
    }
    if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "ice-tcp")) {
      s.has_ice_tcp = true;
      g_object_get(agent, "ice-tcp", &s.ice_tcp, nullptr);
    }
    if (agent) g_object_unref(agent);
    gst_object_unref(ice);
  }
  gst_object_unref(webrtc);
  return s;
}

}  // namespace

class ElementRules : public ::testing::Test {
 protected:
  void SetUp() override { test::fake_hub_reset(); }
  void TearDown() override { test::fake_hub_reset(); }
};

// Both call each other at once (each has the other as `peer`). The smaller name keeps its
// offer: bob drops his and answers alice's. On the first attempt, with no redial hiding a
// failure: one answer, from bob; no hang-up at all (no invalid-sdp from an answer to an
// answer); no second call.
TEST_F(ElementRules, GlareIsResolvedOnTheFirstAttemptByExactlyOneAnswer) {
  test::fake_hub_hold_offers(2);  // the two offers cross, as through a server
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  Peer bob("bob", "unused", {.peer = "alice", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 30000))
      << describe_log();
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}, 30000))
      << describe_log();
  // Media for over 2 s: longer than the first redial delay (1 s) of the peer property.
  EXPECT_TRUE(received(alice, 60, 60));
  EXPECT_TRUE(received(bob, 60, 60));

  // It was glare: each offered before any answer.
  std::vector<HubMessage> log = test::fake_hub_log();
  std::erase_if(log, [](const HubMessage& m) { return m.type == "candidate"; });
  ASSERT_GE(log.size(), 3u) << describe_log();
  EXPECT_EQ(log[0].type, "offer") << describe_log();
  EXPECT_EQ(log[1].type, "offer") << describe_log();
  EXPECT_NE(log[0].from, log[1].from) << "no glare: only one side called" << describe_log();

  std::vector<HubMessage> answers = sent("answer");
  ASSERT_EQ(answers.size(), 1u) << describe_log();
  EXPECT_EQ(answers[0].from, "bob")
      << "alice's name is smaller: her offer is kept" << describe_log();
  EXPECT_TRUE(sent("hang-up").empty()) << describe_log();
  EXPECT_EQ(sent("offer").size(), 2u) << "a redial" << describe_log();

  // One call each: alice's own, and bob's answer after he dropped his offer.
  EXPECT_EQ(alice.count_messages("webrtccall-call-started", {{"peer", "bob"}}), 1);
  EXPECT_TRUE(alice.has_message("webrtccall-call-started", {{"direction", "outgoing"}}));
  EXPECT_EQ(bob.count_messages("webrtccall-call-started", {{"direction", "outgoing"}}), 1);
  EXPECT_EQ(bob.count_messages("webrtccall-call-started", {{"direction", "incoming"}}), 1);
  EXPECT_EQ(alice.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_EQ(bob.count_messages("webrtccall-call-ended", {}), 1);  // his own offer, dropped
  EXPECT_EQ(alice.calls(), std::vector<std::string>{"bob"});
  EXPECT_EQ(bob.calls(), std::vector<std::string>{"alice"});
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

// max-calls (default 1): a further caller is told `busy`, the element says so on the bus,
// and its calls are what they were.
TEST_F(ElementRules, MaxCallsRefusesAFurtherCallerAsBusy) {
  Peer bob("bob", "unused", {.fake_signaller = true});
  Peer alice("alice", "unused", {.fake_signaller = true});
  Peer carol("carol", "unused", {.fake_signaller = true});
  for (Peer* p : {&bob, &alice, &carol}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  alice.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received(bob, 10, 10));
  ASSERT_EQ(bob.calls(), std::vector<std::string>{"alice"});

  carol.call("bob");
  GstStructure* ended = carol.wait_message("webrtccall-call-ended", {{"peer", "bob"}});
  ASSERT_TRUE(ended) << describe_log();
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "bob is busy");
  EXPECT_TRUE(bob.wait_message("webrtccall-call-refused", {{"peer", "carol"}, {"reason", "busy"}}))
      << describe_log();
  std::vector<HubMessage> hang_ups = sent("hang-up", "bob", "carol");
  ASSERT_EQ(hang_ups.size(), 1u) << describe_log();
  EXPECT_EQ(hang_ups[0].detail, "busy");
  EXPECT_TRUE(sent("answer", "bob", "carol").empty()) << describe_log();
  EXPECT_FALSE(bob.has_message("webrtccall-call-started", {{"peer", "carol"}}));
  EXPECT_EQ(bob.calls(), std::vector<std::string>{"alice"});

  // Nor does bob place a call over the limit himself.
  bob.call("carol");
  int before = bob.video_buffers;
  ASSERT_TRUE(received(bob, before + 30, 0));  // the call with alice goes on meanwhile
  EXPECT_FALSE(bob.has_message("webrtccall-call-started", {{"peer", "carol"}}));
  EXPECT_TRUE(sent("offer", "bob").empty()) << describe_log();
  EXPECT_EQ(bob.calls(), std::vector<std::string>{"alice"});
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(ElementRules, MaxCallsTwoTakesTwoCallersAndRefusesTheThird) {
  Peer bob("bob", "unused", {.extra = "max-calls=2", .fake_signaller = true});
  Peer alice("alice", "unused", {.fake_signaller = true});
  Peer carol("carol", "unused", {.fake_signaller = true});
  Peer dave("dave", "unused", {.send_video = false, .send_audio = false, .fake_signaller = true});
  for (Peer* p : {&bob, &alice, &carol, &dave}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  alice.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  carol.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "carol"}}));
  ASSERT_TRUE(received(carol, 10, 10));
  std::vector<std::string> two = {"alice", "carol"};
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  ASSERT_EQ(sorted(bob.calls()), two);

  dave.call("bob");
  EXPECT_TRUE(bob.wait_message("webrtccall-call-refused", {{"peer", "dave"}, {"reason", "busy"}}))
      << describe_log();
  GstStructure* ended = dave.wait_message("webrtccall-call-ended", {{"peer", "bob"}});
  ASSERT_TRUE(ended);
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "bob is busy");
  EXPECT_EQ(sorted(bob.calls()), two);
}

// The DTLS certificate is made once (in the background when the element starts, 140-480 ms)
// and shared by every call: a certificate per call would put that cost on each call's setup.
TEST_F(ElementRules, EveryCallOfAnElementUsesTheSameDtlsCertificate) {
  Peer alice("alice", "unused", {.extra = "max-calls=2", .fake_signaller = true});
  Peer bob("bob", "unused", {.fake_signaller = true});
  Peer carol("carol", "unused", {.fake_signaller = true});
  for (Peer* p : {&alice, &bob, &carol}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  // Only the offers and answers matter here, not whether the calls connect.
  auto sent_by = [](const char* type, const char* from, std::size_t n) {
    return [=] { return sent(type, from).size() >= n; };
  };
  alice.call("bob");
  ASSERT_TRUE(alice.wait_until(sent_by("answer", "bob", 1))) << describe_log();
  alice.call("carol");  // at the same time
  ASSERT_TRUE(alice.wait_until(sent_by("answer", "carol", 1))) << describe_log();
  alice.hang_up("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}));
  alice.call("bob");  // and after another call ended
  ASSERT_TRUE(alice.wait_until(sent_by("answer", "bob", 2))) << describe_log();

  std::vector<HubMessage> offers = sent("offer", "alice");
  ASSERT_EQ(offers.size(), 3u) << describe_log();
  std::vector<std::string> first = fingerprints(offers[0].detail);
  ASSERT_FALSE(first.empty()) << offers[0].detail;
  for (const HubMessage& offer : offers) {
    std::vector<std::string> f = fingerprints(offer.detail);
    ASSERT_FALSE(f.empty()) << offer.detail;
    for (const std::string& fp : f) EXPECT_EQ(fp, first[0]) << "offer to " << offer.to;
  }
  // Bob's answers too (his second call to alice).
  std::vector<HubMessage> answers = sent("answer", "bob");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(fingerprints(answers[0].detail), fingerprints(answers[1].detail));
}

// upnp (off by default) and latency (50 ms by default) reach the live call's libnice agent
// and webrtcbin (whose rtpbin holds the jitter buffers).
TEST_F(ElementRules, UpnpAndLatencyReachTheCallsWebrtcbinAndIceAgent) {
  Peer alice("alice", "unused", {.fake_signaller = true});
  Peer bob("bob", "unused", {.extra = "upnp=true latency=70", .fake_signaller = true});
  for (Peer* p : {&alice, &bob}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received(alice, 5, 5));

  guint property = 0;
  g_object_get(alice.element(), "latency", &property, nullptr);
  ASSERT_EQ(property, 50u) << "README: latency defaults to 50 ms";
  gboolean upnp_property = TRUE;
  g_object_get(alice.element(), "upnp", &upnp_property, nullptr);
  ASSERT_FALSE(upnp_property);

  WebrtcbinSettings a = inspect_webrtcbin(alice), b = inspect_webrtcbin(bob);
  ASSERT_TRUE(a.found && b.found) << "no webrtcbin inside the element during a call";
  EXPECT_EQ(a.latency, 50u);
  EXPECT_EQ(b.latency, 70u);
  ASSERT_TRUE(a.has_rtpbin && b.has_rtpbin) << "no rtpbin inside webrtcbin";
  EXPECT_EQ(a.rtpbin_latency, 50u);
  EXPECT_EQ(b.rtpbin_latency, 70u);
  ASSERT_TRUE(a.has_upnp && b.has_upnp) << "the ICE agent has no upnp property";
  EXPECT_FALSE(a.upnp) << "UPnP is on in a call of an element with upnp=false";
  EXPECT_TRUE(b.upnp) << "upnp=true did not reach the ICE agent";
}

// ice-tcp (on by default) reaches the live call's libnice agent: off, the call has no TCP
// candidate (bench/fanout: 2 fds a viewer less, a listening socket and the connection the
// remote's ICE-TCP check opens to it) and still connects over UDP.
TEST_F(ElementRules, IceTcpReachesTheCallsIceAgent) {
  Peer alice("alice", "unused", {.fake_signaller = true});
  Peer bob("bob", "unused", {.extra = "ice-tcp=false", .fake_signaller = true});
  for (Peer* p : {&alice, &bob}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  gboolean property = FALSE;
  g_object_get(alice.element(), "ice-tcp", &property, nullptr);
  ASSERT_TRUE(property) << "README: ice-tcp defaults to true";
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received(alice, 5, 5));
  ASSERT_TRUE(received(bob, 5, 5));

  WebrtcbinSettings a = inspect_webrtcbin(alice), b = inspect_webrtcbin(bob);
  ASSERT_TRUE(a.found && b.found) << "no webrtcbin inside the element during a call";
  ASSERT_TRUE(a.has_ice_tcp && b.has_ice_tcp) << "the ICE agent has no ice-tcp property";
  EXPECT_TRUE(a.ice_tcp) << "ICE-TCP is off in a call of an element with ice-tcp=true";
  EXPECT_FALSE(b.ice_tcp) << "ice-tcp=false did not reach the ICE agent";
  // What the remote sees: bob's candidates, sent to alice through the signaller, are UDP only.
  int bob_tcp = 0, bob_udp = 0, alice_tcp = 0;
  for (const HubMessage& m : test::fake_hub_log()) {
    if (m.type != "candidate") continue;
    bool tcp =
        m.detail.find(" TCP ") != std::string::npos || m.detail.find(" tcp ") != std::string::npos;
    if (m.from == "bob") (tcp ? bob_tcp : bob_udp)++;
    if (m.from == "alice" && tcp) ++alice_tcp;
  }
  EXPECT_GT(bob_udp, 0) << describe_log();
  EXPECT_EQ(bob_tcp, 0) << "bob (ice-tcp=false) sent TCP candidates";
  EXPECT_GT(alice_tcp, 0) << "alice (ice-tcp on) sent no TCP candidate: the test shows nothing";
}

// The peer property redials a call that failed, not one the peer refused: a declined call is
// not placed again (the first redial would come 1 s later), a busy one is, once the peer is
// free.
TEST_F(ElementRules, PeerDoesNotRedialAPeerWhoDeclined) {
  Peer bob("bob", "unused", {.extra = "auto-answer=false", .fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}});
  ASSERT_TRUE(ended) << describe_log();
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "bob declined the call");
  ASSERT_TRUE(
      bob.wait_message("webrtccall-call-refused", {{"peer", "alice"}, {"reason", "declined"}}));
  // A redial would be refused again within a few seconds (1 s, then 2 s).
  EXPECT_FALSE(bob.wait_message("webrtccall-call-refused", {{"peer", "alice"}}, 3500))
      << "alice called bob again after he declined" << describe_log();
  EXPECT_EQ(sent("offer", "alice").size(), 1u) << describe_log();
}

TEST_F(ElementRules, PeerRedialsABusyPeerOnceItIsFree) {
  Peer bob("bob", "unused", {.fake_signaller = true});
  Peer carol("carol", "unused", {.fake_signaller = true});
  for (Peer* p : {&bob, &carol}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  carol.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "carol"}}));
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}});
  ASSERT_TRUE(ended) << describe_log();
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "bob is busy");
  carol.hang_up("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "carol"}}));
  // Redialed by itself (1 s, 2 s, 4 s ... after the busy), and this time answered.
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 20000))
      << describe_log();
  EXPECT_TRUE(received(bob, 5, 5));
}

// After a deliberate hang-up the peer property does not redial, until the peer went offline
// and came back: then it is called again.
TEST_F(ElementRules, PeerIsCalledAgainAfterAHangUpOnlyOnceItCameBack) {
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));
  {
    Peer bob("bob", "unused", {.fake_signaller = true});
    ASSERT_TRUE(bob.play());
    ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
    ASSERT_TRUE(bob.wait_message("webrtccall-call-started", {{"peer", "alice"}}));  // this call
    alice.hang_up("bob");
    ASSERT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}));
    EXPECT_FALSE(bob.wait_message("webrtccall-call-started", {{"peer", "alice"}}, 2500))
        << "redialed after a deliberate hang-up" << describe_log();
  }  // bob goes offline
  Peer bob_again("bob", "unused", {.fake_signaller = true});
  ASSERT_TRUE(bob_again.play());
  ASSERT_TRUE(bob_again.wait_message("webrtccall-call-connected", {{"peer", "alice"}}, 20000))
      << "bob came back and was not called" << describe_log();
  EXPECT_EQ(sent("offer", "alice").size(), 2u) << describe_log();
}

// Calling oneself is refused without a call: no webrtccall-call-started, no offer. (The
// signaling thread handles calls in order: once the call to bob is up, the one to alice
// herself was handled.)
TEST_F(ElementRules, CallingYourselfStartsNoCall) {
  Peer alice("alice", "unused", {.extra = "max-calls=2", .fake_signaller = true});
  Peer bob("bob", "unused", {.fake_signaller = true});
  for (Peer* p : {&alice, &bob}) {
    ASSERT_TRUE(p->play());
    ASSERT_TRUE(p->wait_message("webrtccall-registered", {}));
  }
  alice.call("alice");
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  EXPECT_FALSE(alice.has_message("webrtccall-call-started", {{"peer", "alice"}}));
  EXPECT_TRUE(sent("offer", "alice", "alice").empty()) << describe_log();
  EXPECT_EQ(alice.calls(), std::vector<std::string>{"bob"});
}

// An offer whose only fingerprint line carries no hash: webrtcbin 1.22 takes it, so the
// element's own checks must refuse it, with their reason, before any DTLS (the caller is told
// invalid-sdp). With those checks off, the call went on to fail later, at DTLS, as a mismatch.
TEST_F(ElementRules, OfferWithAHashlessFingerprintIsRefusedByTheElement) {
  for (const char* replacement : {"a=fingerprint:sha-256", "a=fingerprint:sha-256 "}) {
    SCOPED_TRACE(replacement);
    test::fake_hub_reset();
    test::fake_hub_set_tamper(
        [replacement](const std::string& from, const std::string&, const std::string& sdp) {
          if (from != "alice") return sdp;
          std::istringstream in(sdp);
          std::string line, out;
          while (std::getline(in, line)) {
            if (line.rfind("a=fingerprint:", 0) == 0) line = std::string(replacement) + "\r";
            out += line + "\n";
          }
          return out;
        });
    Peer bob("bob", "unused", {.fake_signaller = true});
    ASSERT_TRUE(bob.play());
    ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
    Peer alice("alice", "unused", {.fake_signaller = true});
    ASSERT_TRUE(alice.play());
    ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));
    alice.call("bob");
    GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}});
    ASSERT_TRUE(ended) << describe_log();
    std::string reason = gst_structure_get_string(ended, "reason");
    // The element's own reason (SDP checks before webrtcbin), not the DTLS stage's mismatch.
    EXPECT_NE(reason.find("fingerprint"), std::string::npos) << reason;
    EXPECT_NE(reason.find("refused"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("does not match"), std::string::npos) << reason;
    std::vector<HubMessage> hang_ups = sent("hang-up", "bob", "alice");
    ASSERT_EQ(hang_ups.size(), 1u) << describe_log();
    EXPECT_EQ(hang_ups[0].detail, "invalid-sdp");
    EXPECT_TRUE(sent("answer", "bob").empty()) << describe_log();
    EXPECT_FALSE(bob.has_message("webrtccall-call-connected", {}));
    EXPECT_TRUE(bob.calls().empty());
    EXPECT_TRUE(bob.errors().empty());
  }
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
