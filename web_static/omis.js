// OMIS pages: a form is sent once, even when the button is clicked twice; limited fields count their characters.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method.toLowerCase() !== "post") {
    return;
  }
  if (form.dataset.sent === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.setAttribute("aria-busy", "true");
  }
});

// Coming back through the browser history shows the page as it was left: let it be sent again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-sent]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("button[aria-busy]")) {
      button.removeAttribute("aria-busy");
    }
  }
});

// A live counter under each field with a maxlength: «12 из 200». The page renders the counter
// element («до 200 символов»); screen readers hear only that the limit is reached, not every key.
const NEAR = 0.9;

function updateCounter(field, counter, announce) {
  const limit = Number(counter.dataset.limit);
  const used = field.value.length;   // what maxlength counts
  counter.textContent = `${used} из ${limit}`;
  counter.classList.toggle("near", used >= limit * NEAR && used < limit);
  counter.classList.toggle("full", used >= limit);
  const live = document.getElementById("live");
  if (announce && live && used >= limit && field.dataset.full !== "1") {
    live.textContent = `Достигнут предел: ${limit} символов.`;
  }
  field.dataset.full = used >= limit ? "1" : "0";
}

function setUpCounters() {
  for (const counter of document.querySelectorAll(".counter[data-limit]")) {
    const field = document.getElementById(counter.id.replace(/-counter$/, ""));
    if (!field) {
      continue;
    }
    updateCounter(field, counter, false);
    field.addEventListener("input", () => updateCounter(field, counter, true));
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", setUpCounters);
} else {
  setUpCounters();
}
