// Drag and drop onto the upload form, and the upload's progress. No inline script
// anywhere (the Content-Security-Policy forbids it): this file is the site's only one.
"use strict";
// A part of a page that follows a job: fetched again every 1.5 s until it says done.
document.addEventListener("DOMContentLoaded", () => {
  const region = document.querySelector("[data-poll]");
  if (!region) return;
  const poll = () => fetch(region.dataset.poll, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((html) => {
      region.innerHTML = html;
      if (!region.querySelector("[data-done]")) setTimeout(poll, 1500);
    })
    .catch(() => setTimeout(poll, 5000));
  setTimeout(poll, 1500);
});
// A page whose release is being prepared: reloaded once it is ready.
document.addEventListener("DOMContentLoaded", () => {
  const waiting = document.querySelector("[data-reload-when]");
  if (!waiting) return;
  const poll = () => fetch(waiting.dataset.reloadWhen, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((state) => (state === "done" ? window.location.reload() : setTimeout(poll, 1500)))
    .catch(() => setTimeout(poll, 5000));
  setTimeout(poll, 1500);
});
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const bar = document.getElementById("progress");
  ["dragenter", "dragover"].forEach((e) => drop.addEventListener(e, (ev) => {
    ev.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((e) => drop.addEventListener(e, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer.files.length) input.files = ev.dataTransfer.files;
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    xhr.upload.addEventListener("progress", (p) => {
      if (p.lengthComputable) bar.value = Math.round((100 * p.loaded) / p.total);
    });
    xhr.addEventListener("load", () => {
      document.open(); document.write(xhr.responseText); document.close();
    });
    xhr.send(new FormData(form));
  });
});
