// The words of a `hang-up`'s `reason` (docs/protocol.md), both ways: what the element sends
// when a call fails here, and what its webrtccall-call-ended bus message says when the remote
// hangs up. The web client (examples/web/outcome.js) shows the same words. Pure C++.
//
//   (none), hang-up   the remote hung up            busy              in another call
//   declined          refused the call              user-unavailable  the server: not online
//   disconnected      the server: left the server   timeout           did not connect in time,
//   invalid-sdp       refused our description                         or its media stopped
//   no-common-codec   no codec both can use         ice-failed        no network path
//   failed[: why]     the call failed there         stopped           its pipeline stopped
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace webrtccall {

// At most this many bytes of a failure's text or of a remote's unknown reason are kept.
inline constexpr std::size_t kMaxReasonDetail = 200;

// The `reason` sent to the remote when a call fails here with `why` (the call-ended reason):
// "ice-failed" for an ICE failure, else "failed: <why>" (cut at kMaxReasonDetail bytes).
std::string failure_hang_up_reason(std::string_view why);

// The webrtccall-call-ended reason when `peer` hangs up with `reason` ("" if none). Unknown
// reasons are kept verbatim (cut, control characters replaced): "<peer> hung up (<reason>)".
std::string describe_remote_hang_up(std::string_view peer, std::string_view reason);

}  // namespace webrtccall
