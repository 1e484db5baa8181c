#include "router.h"

#include <algorithm>
#include <utility>

namespace signaling {

using protocol::ErrorCode;

Router::Router(RouterConfig config) : config_(std::move(config)) {}

void Router::send(Effects& fx, ConnId to, std::string text) {
  fx.sends.push_back({to, std::make_shared<const std::string>(std::move(text))});
}

void Router::connect(ConnId conn, bool authorized, std::int64_t now_us, Effects& fx) {
  Conn& c = conns_[conn];
  c.authorized = authorized || config_.token.empty();
  c.tokens = config_.burst;
  c.last_refill_us = now_us;
  send(fx, conn, protocol::make_id(conn));
}

bool Router::take_token(Conn& c, std::int64_t now_us) {
  if (now_us > c.last_refill_us) {
    double elapsed_s = static_cast<double>(now_us - c.last_refill_us) / 1e6;
    c.tokens = std::min(config_.burst, c.tokens + elapsed_s * config_.max_messages_per_second);
    c.last_refill_us = now_us;
  }
  if (c.tokens < 1.0) return false;
  c.tokens -= 1.0;
  return true;
}

void Router::refuse_message(ConnId id, Conn& c, ErrorCode code, std::string_view why, Effects& fx) {
  fx.refused.push_back(code);
  fx.events.push_back(
      {id, "refused", std::string(protocol::to_string(code)) + ": " + std::string(why)});
  switch (code) {
    case ErrorCode::kUserUnavailable:
    case ErrorCode::kNoTarget:
      // Legitimate races (the user just left, the call just ended): never counted as abuse.
      break;
    case ErrorCode::kTooLarge:
      send(fx, id, protocol::make_error(code, why));
      fx.closes.push_back({id, kCloseTooBig, "message too big"});
      return;
    default:
      if (++c.bad_messages > config_.max_bad_messages) {
        send(fx, id, protocol::make_error(code, why));
        fx.closes.push_back({id, kClosePolicy, "too many refused messages"});
        return;
      }
      break;
  }
  send(fx, id, protocol::make_error(code, why));
}

void Router::refuse(ConnId conn, ErrorCode code, std::string_view why, Effects& fx) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  refuse_message(conn, it->second, code, why, fx);
}

void Router::receive(ConnId id, std::string_view text, std::int64_t now_us, Effects& fx) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;

  if (!take_token(c, now_us)) {
    fx.refused.push_back(ErrorCode::kRateLimited);
    // One error per burst of refusals: answering every refused message would let a
    // flooding client make the server flood it back.
    if (c.rate_strikes++ == 0) {
      send(fx, id,
           protocol::make_error(ErrorCode::kRateLimited,
                                "too many messages per second; message dropped"));
      fx.events.push_back({id, "refused", "rate-limited"});
    }
    if (c.rate_strikes > config_.max_rate_strikes) {
      fx.closes.push_back({id, kClosePolicy, "message rate limit exceeded"});
    }
    return;
  }
  c.rate_strikes = 0;

  protocol::ParseResult parsed = protocol::parse_client(text, config_.limits);
  if (auto* err = std::get_if<protocol::Error>(&parsed)) {
    refuse_message(id, c, err->code, err->message, fx);
    return;
  }
  protocol::ClientMessage& msg = std::get<protocol::ClientMessage>(parsed);
  if (auto* u = std::get_if<protocol::Username>(&msg)) {
    handle_username(id, c, *u, fx);
    return;
  }
  if (c.name.empty()) {
    refuse_message(id, c, ErrorCode::kUnregistered, "send `username` before anything else", fx);
    return;
  }
  if (auto* chat = std::get_if<protocol::Chat>(&msg)) {
    handle_chat(id, c, *chat, fx);
  } else {
    handle_signal(id, c, std::get<protocol::Signal>(msg), fx);
  }
}

std::string Router::unique_name(const std::string& wanted) const {
  if (!by_name_.contains(wanted)) return wanted;
  for (unsigned n = 1;; ++n) {
    std::string suffix = std::to_string(n);
    std::string base = wanted;
    // Keep the result within the name limit: shorten the base (on a character boundary).
    while (g_utf8_strlen(base.c_str(), static_cast<gssize>(base.size())) +
               static_cast<glong>(suffix.size()) >
           static_cast<glong>(protocol::kMaxNameChars)) {
      const char* prev = g_utf8_find_prev_char(base.c_str(), base.c_str() + base.size());
      base.resize(static_cast<std::size_t>(prev - base.c_str()));
    }
    std::string candidate = base + suffix;
    if (!by_name_.contains(candidate)) return candidate;
  }
}

void Router::handle_username(ConnId id, Conn& c, protocol::Username& msg, Effects& fx) {
  if (!c.authorized) {
    if (!msg.token || *msg.token != config_.token) {
      refuse_message(id, c, ErrorCode::kForbidden, "a valid `token` is required to register", fx);
      return;
    }
    c.authorized = true;
  }
  std::string why;
  std::optional<std::string> name = protocol::normalize_name(msg.name, &why);
  if (!name) {
    refuse_message(id, c, ErrorCode::kBadName, why, fx);
    return;
  }
  if (*name == c.name) return;  // already registered under this name

  std::string given = unique_name(*name);
  if (!c.name.empty()) by_name_.erase(c.name);
  std::string old = std::exchange(c.name, given);
  by_name_.emplace(given, id);
  fx.userlist_changed = true;
  if (given != *name) send(fx, id, protocol::make_reject_username(id, given));
  if (old.empty()) {
    fx.events.push_back({id, "registered", given});
  } else {
    fx.events.push_back({id, "renamed", old + " -> " + given});
  }
}

void Router::handle_chat(ConnId id, Conn& c, protocol::Chat& msg, Effects& fx) {
  (void)id;
  auto text = std::make_shared<const std::string>(
      protocol::make_chat(c.name, protocol::strip_markup(msg.text), msg.date.get()));
  for (const auto& [name, to] : by_name_) fx.sends.push_back({to, text});
  fx.relayed += by_name_.size();
}

void Router::pair(ConnId a, ConnId b) {
  if (a == b) return;
  conns_[a].partners.insert(b);
  conns_[b].partners.insert(a);
}

void Router::unpair(ConnId a, ConnId b) {
  if (auto it = conns_.find(a); it != conns_.end()) it->second.partners.erase(b);
  if (auto it = conns_.find(b); it != conns_.end()) it->second.partners.erase(a);
}

void Router::handle_signal(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx) {
  ConnId to = 0;
  if (msg.target) {
    auto found = by_name_.find(*msg.target);
    if (found == by_name_.end()) {
      if (msg.type == "video-offer") {
        // Unmodified sample clients reset their call UI on hang-up, not on error.
        fx.refused.push_back(ErrorCode::kUserUnavailable);
        fx.events.push_back({id, "refused", "user-unavailable: " + *msg.target});
        send(fx, id, protocol::make_hang_up(*msg.target, c.name, "user-unavailable"));
      } else if (msg.type == "hang-up") {
        // Hanging up on someone who already left: nothing to do, nothing to report.
      } else {
        refuse_message(id, c, ErrorCode::kUserUnavailable,
                       "no user named \"" + *msg.target + "\" is online", fx);
      }
      return;
    }
    to = found->second;
  } else {
    if (!protocol::is_call_signal(msg.type)) {
      refuse_message(id, c, ErrorCode::kNoTarget, msg.type + " has no `target`", fx);
      return;
    }
    if (c.partners.size() != 1) {
      if (msg.type == "hang-up" && c.partners.empty()) return;
      refuse_message(id, c, ErrorCode::kNoTarget,
                     c.partners.empty()
                         ? msg.type + " has no `target` and there is no call to send it to"
                         : msg.type + " has no `target` and there are " +
                               std::to_string(c.partners.size()) + " calls; name one",
                     fx);
      return;
    }
    to = *c.partners.begin();
  }

  std::optional<std::string> text = protocol::stamp_name(msg.object.get(), c.name);
  if (!text) {
    refuse_message(id, c, ErrorCode::kMalformed, "message holds invalid Unicode (lone surrogate)",
                   fx);
    return;
  }
  if (msg.type == "video-offer") {
    pair(id, to);
  } else if (msg.type == "hang-up") {
    unpair(id, to);
  }
  send(fx, to, std::move(*text));
  fx.relayed++;
}

void Router::disconnect(ConnId id, Effects& fx) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn c = std::move(it->second);
  conns_.erase(it);
  for (ConnId partner : c.partners) {
    auto p = conns_.find(partner);
    if (p == conns_.end()) continue;
    p->second.partners.erase(id);
    send(fx, partner, protocol::make_hang_up(c.name, p->second.name, "disconnected"));
  }
  if (!c.name.empty()) {
    by_name_.erase(c.name);
    fx.userlist_changed = true;
  }
}

std::string Router::userlist_message() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, id] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return protocol::make_userlist(names);
}

std::vector<ConnId> Router::registered() const {
  std::vector<ConnId> ids;
  ids.reserve(by_name_.size());
  for (const auto& [name, id] : by_name_) ids.push_back(id);
  return ids;
}

std::string Router::name_of(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? std::string() : it->second.name;
}

std::set<ConnId> Router::partners_of(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? std::set<ConnId>() : it->second.partners;
}

}  // namespace signaling
