// Keeps every <time data-countdown> on the page counting: the time left to its datetime, as
// web/dashboard.time_left writes it on the server ("3 d 4 h 5 min left", "overdue by ...").
(function () {
  function format(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var text = (days ? days + " d " : "") + hours + " h " + (minutes % 60) + " min";
    return seconds >= 0 ? text + " left" : "overdue by " + text;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var seconds = Math.trunc((Date.parse(el.dateTime) - now) / 1000);
      el.textContent = format(seconds);
      el.classList.toggle("bad", seconds < 0);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
