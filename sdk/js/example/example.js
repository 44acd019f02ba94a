// The example shop's use of the SDK: a panel of switches, one per purpose, and two events.
// Open it as example/index.html?endpoint=http://localhost:8000&key=<a browser key> from a
// server of sdk/js/ on an origin the key allows (docs/sdk.md, "Try the example").
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var NOTICE = { id: params.get("notice") || "web", version: params.get("version") || "1" };
  // What this site asks for, in its own words (the notice above says the same).
  var PURPOSES = [
    ["analytics", "Analytics", "Count visits and clicks to improve the shop."],
    ["personalization", "Personalization", "Show scarves that suit what you looked at."],
    ["marketing", "Marketing", "Send you offers by e-mail."],
    ["advertising", "Advertising", "Share data with advertising partners (a sale or share)."],
  ];

  var list = document.getElementById("purposes");
  var status = document.getElementById("status");

  function say(text) {
    status.textContent = text;
  }

  PURPOSES.forEach(function (p) {
    var item = document.createElement("li");
    item.innerHTML =
      '<label><input type="checkbox" role="switch"> <span></span></label><p></p>';
    var input = item.querySelector("input");
    input.id = "purpose-" + p[0];
    input.dataset.purpose = p[0];
    input.setAttribute("aria-describedby", "purpose-" + p[0] + "-about");
    item.querySelector("span").textContent = p[1];
    var about = item.querySelector("p");
    about.id = "purpose-" + p[0] + "-about";
    about.textContent = p[2];
    list.appendChild(item);
  });

  function render(state) {
    list.querySelectorAll("input").forEach(function (input) {
      input.checked = state.granted.indexOf(input.dataset.purpose) >= 0;
    });
    document.getElementById("gpc-note").hidden = !state.gpc_honored;
  }

  var key = params.get("key");
  if (!key) {
    say("Give this page ?endpoint=…&key=… (a browser key for this page's origin).");
    return;
  }
  var endpoint = params.get("endpoint") || "http://localhost:8000";
  var Consentry = window.Consentry;
  Consentry.on("change", render);
  Consentry.on("error", function (error) {
    say("The choice could not be saved (" + error.code + "). Please try again.");
  });
  Consentry.init({
    endpoint: endpoint,
    key: key,
    notice: NOTICE,
    events: { page_view: ["analytics"], basket_add: ["analytics", "personalization"] },
  }).then(render);

  // Held in memory until the visitor decides; sent only if they switch analytics on.
  Consentry.track("page_view", { path: location.pathname });

  list.addEventListener("change", function (event) {
    var input = event.target;
    var purpose = input.dataset.purpose;
    var name = input.parentNode.textContent.trim();
    var wanted = input.checked;
    input.disabled = true;
    var done = wanted
      ? Consentry.set(Object.fromEntries([[purpose, "granted"]]), { notice: NOTICE })
      : Consentry.withdraw([purpose]);
    done
      .then(function (state) {
        var on = state.granted.indexOf(purpose) >= 0;
        if (wanted && !on) say(name + " stays off: your browser asked us not to sell or share.");
        else say(name + (on ? " is on." : " is off."));
      })
      .catch(function (error) {
        input.checked = !wanted;
        say(name + " could not be changed (" + error.code + "). Please try again.");
      })
      .then(function () {
        input.disabled = false;
        input.focus();
      });
  });

  document.getElementById("withdraw-all").addEventListener("click", function () {
    Consentry.withdraw("all").then(
      function (state) {
        render(state);
        say("Everything is off.");
      },
      function (error) {
        say("That did not work (" + error.code + "). Please try again.");
      }
    );
  });

  document.getElementById("add").addEventListener("click", function () {
    Consentry.track("basket_add", { item: "scarf-green" });
    document.getElementById("basket").textContent = "The scarf is in your basket.";
  });
})();
