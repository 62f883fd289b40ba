// airlock console: live approvals over server-sent events. Everything else
// works without JavaScript; this only keeps the approvals list current.
"use strict";
(function () {
  var list = document.querySelector("[data-live]");
  if (!list || !window.EventSource) {
    return;
  }
  var source = new EventSource(list.getAttribute("data-live"));
  source.addEventListener("approvals", function (event) {
    // Keep the focus where it was when the list is replaced.
    var focused = document.activeElement && document.activeElement.id;
    list.innerHTML = event.data;
    if (focused) {
      var again = document.getElementById(focused);
      if (again) {
        again.focus();
      }
    }
  });
  source.addEventListener("revoked", function (event) {
    source.close();
    window.location.assign(event.data);
  });
})();
