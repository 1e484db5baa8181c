// The ?ice= query parameter of the pages (app.js, watch.js): ICE servers, comma-separated,
//   stun:host:port
//   turn:user:password@host:port   (also turns:, and a ?transport=tcp suffix, URL-encoded
//                                   inside the page URL)
// The user name and password must not contain "@" or ",". onBad(text) hears of every entry
// that is none of these (it is skipped).
export function parseIceServers(list, onBad = () => {}) {
  const servers = [];
  for (const entry of (list ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(stuns?|turns?):(?:([^:@]*):([^@]*)@)?(.+)$/.exec(entry);
    if (!m) {
      onBad(`Ignoring the ICE server "${entry}": expected stun:host:port or ` +
            "turn:user:password@host:port.");
      continue;
    }
    const [, scheme, username, credential, address] = m;
    const server = {urls: `${scheme}:${address}`};
    if (username !== undefined) Object.assign(server, {username, credential});
    servers.push(server);
  }
  return servers;
}
