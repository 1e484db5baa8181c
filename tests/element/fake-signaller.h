// An in-process signaller for tests: elements in one process reach each other through a hub
// instead of a server. The hub can tamper with descriptions in transit (a man in the middle)
// and counts what passes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "signaller.h"

G_BEGIN_DECLS
#define TEST_TYPE_FAKE_SIGNALLER (test_fake_signaller_get_type())
G_DECLARE_FINAL_TYPE(TestFakeSignaller, test_fake_signaller, TEST, FAKE_SIGNALLER, GObject)
G_END_DECLS

namespace test {

// Rewrites an SDP on its way from `from` to `to` (hub-wide; empty: untouched).
using SdpTamper = std::function<std::string(const std::string& from, const std::string& to,
                                            const std::string& sdp)>;
void fake_hub_set_tamper(SdpTamper tamper);
// Holds the next `count` offers sent through the hub until all of them were sent, then
// delivers them together: calls placed at about the same time then cross on the wire, as
// in glare through a real server, however long each side took to make its offer.
void fake_hub_hold_offers(unsigned count);
// Clears the tamper, the hold and the log.
void fake_hub_reset();

// What an element sent through the hub, in order (hub-wide).
struct HubMessage {
  std::string from, to;
  std::string type;    // "offer", "answer", "candidate" or "hang-up"
  std::string detail;  // the SDP as sent (before any tamper), the hang-up's reason
};
std::vector<HubMessage> fake_hub_log();
TestFakeSignaller* fake_signaller_new();

}  // namespace test
