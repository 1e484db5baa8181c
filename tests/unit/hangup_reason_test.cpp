// The words of a hang-up's reason (gst-plugin/hangup-reason.h): what the element sends when a
// call fails, and what its webrtccall-call-ended says when the remote hangs up.
#include "hangup-reason.h"

#include <gtest/gtest.h>

#include <string>

using webrtccall::describe_remote_hang_up;
using webrtccall::failure_hang_up_reason;
using webrtccall::kMaxReasonDetail;

TEST(FailureReason, IceFailureIsIceFailed) {
  EXPECT_EQ(failure_hang_up_reason("ICE failed: no network path to web"), "ice-failed");
}

TEST(FailureReason, OtherFailuresSayWhy) {
  EXPECT_EQ(failure_hang_up_reason("remote description refused: bad m-line"),
            "failed: remote description refused: bad m-line");
  EXPECT_EQ(failure_hang_up_reason("the remote certificate does not match its fingerprint"),
            "failed: the remote certificate does not match its fingerprint");
}

TEST(FailureReason, LongTextIsCutOnACharacterBoundary) {
  std::string why =
      std::string(kMaxReasonDetail - 1, 'x') + "\xc3\xa9" + "tail";  // é across the cut
  std::string r = failure_hang_up_reason(why);
  EXPECT_EQ(r, "failed: " + std::string(kMaxReasonDetail - 1, 'x'));
}

TEST(FailureReason, ControlCharactersBecomeSpaces) {
  EXPECT_EQ(failure_hang_up_reason("line one\nline two\t!"), "failed: line one line two !");
}

TEST(RemoteHangUp, KnownWords) {
  EXPECT_EQ(describe_remote_hang_up("web", ""), "web hung up");
  EXPECT_EQ(describe_remote_hang_up("web", "hang-up"), "web hung up");
  EXPECT_EQ(describe_remote_hang_up("web", "declined"), "web declined the call");
  EXPECT_EQ(describe_remote_hang_up("web", "busy"), "web is busy");
  EXPECT_EQ(describe_remote_hang_up("web", "user-unavailable"), "web is not online");
  EXPECT_EQ(describe_remote_hang_up("web", "disconnected"), "web disconnected from the server");
  EXPECT_EQ(describe_remote_hang_up("web", "timeout"), "web ended the call: timeout");
  EXPECT_EQ(describe_remote_hang_up("web", "invalid-sdp"), "web refused the call: invalid-sdp");
  EXPECT_EQ(describe_remote_hang_up("web", "no-common-codec"), "no common codec with web");
  EXPECT_EQ(describe_remote_hang_up("web", "ice-failed"), "ICE failed: web found no network path");
  EXPECT_EQ(describe_remote_hang_up("web", "stopped"), "web hung up: its pipeline stopped");
  EXPECT_EQ(describe_remote_hang_up("web", "failed"), "the call failed on web's side");
}

TEST(RemoteHangUp, FailedWithWhy) {
  EXPECT_EQ(describe_remote_hang_up("web", "failed: setRemoteDescription: bad SDP"),
            "the call failed on web's side: setRemoteDescription: bad SDP");
  // What one element sends, the other describes: the words survive the round trip.
  EXPECT_EQ(describe_remote_hang_up("gst", failure_hang_up_reason("negotiation failed: x")),
            "the call failed on gst's side: negotiation failed: x");
  EXPECT_EQ(describe_remote_hang_up("gst", failure_hang_up_reason("ICE failed: no path")),
            "ICE failed: gst found no network path");
}

TEST(RemoteHangUp, UnknownReasonsVerbatimAndBounded) {
  EXPECT_EQ(describe_remote_hang_up("web", "gone fishing"), "web hung up (gone fishing)");
  std::string r = describe_remote_hang_up("web", std::string(10000, 'a') + "\n");
  EXPECT_EQ(r, "web hung up (" + std::string(kMaxReasonDetail, 'a') + ")");
}
