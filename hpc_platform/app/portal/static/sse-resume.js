// The run page's live log: keep the stream's URL at the last event shown. The browser's own
// reconnect sends Last-Event-ID, but when a stream ends in an error (a proxy's 502, a restart),
// htmx's SSE extension opens a new EventSource from the `sse-connect` URL, which carries no
// Last-Event-ID: with `?after=<last id>` in that URL the server resumes there instead of
// sending every event again.
document.addEventListener("htmx:sseMessage", function (event) {
  var id = event.detail && event.detail.lastEventId;
  var stream = event.target.closest && event.target.closest("[sse-connect][data-sse-resume]");
  if (!stream || !id || !/^\d+$/.test(id)) {
    return;
  }
  var url = new URL(stream.getAttribute("sse-connect"), window.location.href);
  url.searchParams.set("after", id);
  stream.setAttribute("sse-connect", url.pathname + url.search);
});
