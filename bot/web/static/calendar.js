// The calendar page: FullCalendar month/week/list of deadlines and event windows.
// Times come as the team's wall clock without an offset and FullCalendar runs in "UTC", so a
// deadline is on the team's day in any browser zone (see bot/web/dash_calendar.py).
(function () {
  "use strict";
  var el = document.getElementById("calendar");
  if (!el || !window.FullCalendar) return;
  var labels = JSON.parse(el.dataset.labels || "{}");
  var phone = window.matchMedia("(max-width: 700px)").matches;

  function filterQuery() {
    var form = document.getElementById("filters");
    var params = new URLSearchParams();
    if (form) new FormData(form).forEach(function (v, k) { if (v) params.append(k, v); });
    return params;
  }

  var calendar = new FullCalendar.Calendar(el, {
    timeZone: "UTC",
    locale: el.dataset.lang === "en" ? "en" : "zh-cn",
    firstDay: 1,
    initialView: phone ? "listWeek" : "dayGridMonth",
    height: "auto",
    headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,listWeek" },
    buttonText: { today: labels.today, month: labels.month, week: labels.week, list: labels.list },
    eventDisplay: "block",
    views: { dayGridMonth: { displayEventTime: false } },  // a deadline's title says its time
    dayMaxEventRows: 4,
    nowIndicator: true,
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    events: function (info, success, failure) {
      var params = filterQuery();
      params.set("start", info.startStr);
      params.set("end", info.endStr);
      fetch(el.dataset.feed + "?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (r.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search); return []; }
          if (!r.ok) return r.json().then(function (d) { throw new Error(d.detail && d.detail.message || r.statusText); });
          return r.json();
        })
        .then(success)
        .catch(function (err) {
          var box = document.getElementById("flash");
          if (box) { box.textContent = ""; var d = document.createElement("div"); d.className = "flash refused"; d.setAttribute("role", "alert"); d.textContent = (labels.failed || "") + " " + err.message; box.appendChild(d); }
          failure(err);
        });
    },
    eventDidMount: function (info) {
      var p = info.event.extendedProps;
      info.el.setAttribute("title", info.event.title + " · " + (p.stateLabel || ""));
      info.el.dataset.task = p.task;
      info.el.dataset.kind = p.kind;
      info.el.dataset.state = p.state;
    }
  });
  calendar.render();
  window.ppCalendar = calendar;
  document.addEventListener("pp-filters", function () { calendar.refetchEvents(); });
})();
