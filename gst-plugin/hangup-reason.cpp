#include "hangup-reason.h"

namespace webrtccall {
namespace {

// `text` cut at `max` bytes (never inside a UTF-8 sequence), control characters as spaces.
std::string bounded(std::string_view text, std::size_t max = kMaxReasonDetail) {
  if (text.size() > max) {
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

}  // namespace

std::string failure_hang_up_reason(std::string_view why) {
  if (why.starts_with("ICE failed")) return "ice-failed";
  return "failed: " + bounded(why);
}

std::string describe_remote_hang_up(std::string_view peer_v, std::string_view reason) {
  std::string peer(peer_v);
  if (reason.empty() || reason == "hang-up") return peer + " hung up";
  if (reason == "user-unavailable") return peer + " is not online";
  if (reason == "declined") return peer + " declined the call";
  if (reason == "busy") return peer + " is busy";
  if (reason == "disconnected") return peer + " disconnected from the server";
  if (reason == "timeout") return peer + " ended the call: timeout";
  if (reason == "invalid-sdp") return peer + " refused the call: invalid-sdp";
  if (reason == "no-common-codec") return "no common codec with " + peer;
  if (reason == "ice-failed") return "ICE failed: " + peer + " found no network path";
  if (reason == "stopped") return peer + " hung up: its pipeline stopped";
  if (reason == "failed") return "the call failed on " + peer + "'s side";
  if (reason.starts_with("failed:")) {
    std::string_view why = reason.substr(7);
    while (!why.empty() && why.front() == ' ') why.remove_prefix(1);
    return "the call failed on " + peer + "'s side: " + bounded(why);
  }
  return peer + " hung up (" + bounded(reason) + ")";
}

}  // namespace webrtccall
