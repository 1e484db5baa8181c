// The page's entry point: index.html?watch=NAME is the watch page (watch.js: a receive-only
// call to NAME), anything else the call client (app.js).
if (new URLSearchParams(location.search).has("watch")) {
  import("./watch.js");
} else {
  import("./app.js");
}
