// The upload form: the file goes to the API's own upload (POST .../datasets) with the
// page's XSRF token, the job is followed on its WebSocket, and the dataset's page (with
// its import report) opens when the job has succeeded.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const status = document.getElementById("upload-status");
  const phase = document.getElementById("upload-phase");
  const bar = document.getElementById("upload-bar");
  const errorBox = document.getElementById("upload-error");
  const submit = document.getElementById("upload-submit");
  const nameInput = document.getElementById("upload-name");
  const fileInput = document.getElementById("upload-file");

  function show(text, fraction) {
    status.hidden = false;
    phase.textContent = text;
    const percent = Math.round(100 * Math.max(0, Math.min(1, fraction)));
    bar.style.width = percent + "%";
    bar.textContent = percent + "%";
  }

  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    bar.classList.add("bg-danger");
    submit.disabled = false;
  }

  // a dataset name from a file name: "Sales 2024.csv" -> "sales_2024"
  fileInput.addEventListener("change", () => {
    if (nameInput.value || !fileInput.files.length) return;
    let name = fileInput.files[0].name.replace(/\.(gz|zip)$/i, "").replace(/\.[^.]*$/, "");
    name = name.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z]+/, "").replace(/_+$/, "");
    nameInput.value = name.slice(0, 63);
  });

  function followJob(job) {
    const url = new URL(form.dataset.jobsUrl + job.id + "/events", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    let last = job;
    socket.onmessage = (event) => {
      last = JSON.parse(event.data);
      if (last.state === "queued") show("Waiting for a worker…", 0);
      else if (last.state === "running") show("Reading, typing and checking the rows…", last.progress || 0);
      else if (last.state === "succeeded") {
        show("Done. Opening the report…", 1);
        window.location.assign(form.dataset.datasetUrl + encodeURIComponent(last.dataset || nameInput.value) + "#report");
      } else if (last.state === "failed" || last.state === "cancelled") {
        const message = (last.error && (last.error.message || last.error)) || "The import " + last.state + ".";
        fail(typeof message === "string" ? message : JSON.stringify(message));
      }
    };
    socket.onerror = () => fail("Lost the connection to the job; reload the datasets page to see whether it finished.");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    bar.classList.remove("bg-danger");
    if (!fileInput.files.length) {
      fail("Choose a file to upload.");
      return;
    }
    const data = new FormData();
    data.append("name", nameInput.value.trim());
    data.append("mode", document.getElementById("upload-mode").value);
    data.append("file", fileInput.files[0]);
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl);
    request.setRequestHeader("X-XSRFToken", form.dataset.xsrf);
    request.upload.onprogress = (e) => {
      if (e.lengthComputable) show("Uploading " + fileInput.files[0].name + "…", e.loaded / e.total);
    };
    request.onload = () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch (e) {
        body = { message: "The server answered " + request.status + "." };
      }
      if (request.status === 202) {
        show("Uploaded; importing…", 0);
        followJob({ ...body.job, dataset: body.dataset });
      } else {
        fail(body.message || "The upload was refused (" + request.status + ").");
      }
    };
    request.onerror = () => fail("The upload did not reach the server; check the connection and try again.");
    submit.disabled = true;
    show("Uploading…", 0);
    request.send(data);
  });
});
