// The unitmgr web console: the units table and the unit page with its live graphs.
// Served by `unitmgr web` itself; it loads nothing from other hosts.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83"];

function showError(message) {
  document.getElementById("error").textContent = message || "";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json();
  if (!response.ok) {
    throw new Error(data.error || response.statusText);
  }
  return data;
}

function formatBytes(value) {
  if (value === null || value === undefined) return "";
  const units = ["B", "K", "M", "G", "T"];
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  return (index ? value.toFixed(1) : String(value)) + units[index];
}

function formatUptime(since) {
  if (!since) return "";
  let seconds = Math.max(0, Math.floor(Date.now() / 1000 - since));
  const parts = [];
  for (const [size, label] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
    if (seconds >= size) {
      parts.push(Math.floor(seconds / size) + label);
      seconds %= size;
    }
  }
  parts.push(seconds + "s");
  return parts.slice(0, 2).join(" ");
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function templateOf(name) {
  const match = /^([^@]+)@[^.]*\.service$/.exec(name);
  return match ? match[1] : null;
}

async function refreshUnits() {
  let data;
  try {
    const response = await fetch("/api/units");
    data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    showError("");
  } catch (error) {
    showError(error.message);
    return;
  }
  const body = document.querySelector("#units tbody");
  body.replaceChildren();
  const scaled = new Set();
  for (const unit of data.units) {
    const row = document.createElement("tr");
    row.dataset.unit = unit.name;
    const nameCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/unit/" + encodeURIComponent(unit.name);
    link.textContent = unit.name;
    nameCell.appendChild(link);
    row.appendChild(nameCell);
    row.appendChild(cell(`${unit.active_state} (${unit.sub_state})`, "state-" + unit.active_state));
    row.appendChild(cell(unit.main_pid || "", "number main-pid"));
    row.appendChild(cell(unit.active_state === "active" ? formatUptime(unit.active_enter_time) : "", "number"));
    row.appendChild(cell(unit.n_restarts, "number"));
    row.appendChild(cell(unit.cpu_percent === null || unit.cpu_percent === undefined ? "" :
      unit.cpu_percent.toFixed(1) + "%", "number"));
    row.appendChild(cell(formatBytes(unit.memory_bytes), "number"));
    const buttons = document.createElement("td");
    const template = templateOf(unit.name);
    if (template && !scaled.has(template)) {
      scaled.add(template);
      for (const [label, delta] of [["+", 1], ["-", -1]]) {
        const button = document.createElement("button");
        button.textContent = label;
        button.className = delta > 0 ? "scale-up" : "scale-down";
        button.dataset.template = template;
        button.addEventListener("click", async () => {
          try {
            await post("/api/scale/" + encodeURIComponent(template), { delta });
            refreshUnits();
          } catch (error) {
            showError(error.message);
          }
        });
        buttons.appendChild(button);
      }
    }
    row.appendChild(buttons);
    body.appendChild(row);
  }
}

function drawGraph(canvas, series, field, format) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const all = series.flatMap((line) => line.points.map((p) => p[field]));
  const maximum = Math.max(1, ...all);
  const times = series.flatMap((line) => line.points.map((p) => p.time));
  const start = Math.min(...times);
  const end = Math.max(start + 1, ...times);
  context.strokeStyle = "#e3e6ea";
  context.fillStyle = "#57606a";
  context.font = "11px system-ui";
  for (let step = 0; step <= 4; step += 1) {
    const y = height - 16 - (step / 4) * (height - 24);
    context.beginPath();
    context.moveTo(40, y);
    context.lineTo(width, y);
    context.stroke();
    context.fillText(format((maximum * step) / 4), 2, y + 4);
  }
  series.forEach((line, index) => {
    if (!line.points.length) return;
    context.strokeStyle = line.color || COLORS[index % COLORS.length];
    context.lineWidth = index === 0 ? 2 : 1;
    context.beginPath();
    line.points.forEach((point, i) => {
      const x = 40 + ((point.time - start) / (end - start)) * (width - 44);
      const y = height - 16 - (point[field] / maximum) * (height - 24);
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  });
}

function unitSeries(data) {
  const lines = [{ label: "unit", points: data.series.unit || [], color: COLORS[0] }];
  Object.entries(data.series.processes || {}).forEach(([pid, points], index) => {
    lines.push({ label: "pid " + pid, points, color: COLORS[(index + 1) % COLORS.length] });
  });
  return lines;
}

function appendLog(lines) {
  const pre = document.getElementById("log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  for (const line of lines) {
    const time = new Date(line.time * 1000).toLocaleTimeString();
    pre.append(`${time} [${line.pid}] ${line.text}\n`);
  }
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function appendNotice(text) {
  const pre = document.getElementById("log");
  const notice = document.createElement("span");
  notice.className = "log-notice";
  notice.textContent = text + "\n";
  pre.append(notice);
}

function renderStatus(status) {
  document.getElementById("state").textContent = `${status.active_state} (${status.sub_state})`;
  document.getElementById("state").className = "state-" + status.active_state;
  document.getElementById("main-pid").textContent = status.main_pid || "";
  document.getElementById("restarts").textContent = status.n_restarts || 0;
  document.getElementById("cpu").textContent =
    status.cpu_percent === null || status.cpu_percent === undefined ? "" : status.cpu_percent.toFixed(1) + "%";
  document.getElementById("memory").textContent = formatBytes(status.memory_bytes);
}

async function loadUnit(name) {
  const response = await fetch("/api/unit/" + encodeURIComponent(name));
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  renderStatus(data.status);
  return data;
}

function startUnitPage() {
  const name = decodeURIComponent(location.pathname.slice("/unit/".length));
  document.getElementById("unit-name").textContent = name;
  document.title = "unitmgr: " + name;
  loadUnit(name).then((data) => appendLog(data.status.log || [])).catch((error) => showError(error.message));
  for (const button of document.querySelectorAll("#actions button")) {
    button.addEventListener("click", async () => {
      try {
        await post(`/api/unit/${encodeURIComponent(name)}/${button.dataset.action}`);
        await loadUnit(name);
        showError("");
      } catch (error) {
        showError(error.message);
      }
    });
  }
  const events = new EventSource("/api/events?unit=" + encodeURIComponent(name));
  events.addEventListener("stats", (message) => {
    const data = JSON.parse(message.data);
    if (data.error) showError(data.error);
    const lines = unitSeries(data);
    drawGraph(document.getElementById("cpu-graph"), lines, "cpu", (v) => v.toFixed(v < 10 ? 1 : 0));
    drawGraph(document.getElementById("memory-graph"), lines, "memory", formatBytes);
    document.getElementById("points").textContent = String(lines[0].points.length);
    document.getElementById("legend").replaceChildren(...lines.map((line) => {
      const span = document.createElement("span");
      span.style.color = line.color;
      span.textContent = line.label;
      return span;
    }));
  });
  events.addEventListener("log", (message) => {
    const event = JSON.parse(message.data);
    appendLog(event.records || (event.text !== undefined ? [event] : []));
  });
  events.addEventListener("dropped", (message) => {
    // The manager dropped events because this page read them too slowly, so show the count in the log.
    const event = JSON.parse(message.data);
    appendNotice(`-- ${event.count} log event(s) missed: this page read too slowly; reload for the stored log --`);
  });
  events.addEventListener("ended", (message) => {
    const event = JSON.parse(message.data);
    appendNotice(`-- live log ended: ${event.reason}; reload the page to follow it again --`);
  });
  setInterval(() => loadUnit(name).catch((error) => showError(error.message)), 2000);
}

if (document.body.dataset.page === "units") {
  refreshUnits();
  setInterval(refreshUnits, 2000);
} else {
  startUnitPage();
}
