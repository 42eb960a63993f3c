// The drawing page: strokes on a canvas, sent to /api/predict as a PNG after a
// short pause (debounced), with the answer shown as a digit, bars and the
// 28x28 image the model saw. Plain JavaScript, no libraries, nothing remote.
"use strict";

const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const digitView = document.getElementById("digit");
const statusView = document.getElementById("status");
const bars = document.getElementById("bars");
const seen = document.getElementById("preprocessed").getContext("2d");
const dropZone = document.getElementById("drop-zone");
const DEBOUNCE_MS = 150;
const PEN_WIDTH = 18; // in canvas pixels (280 wide): a marker, as people draw digits

let strokes = []; // each stroke: an array of [x, y] points in canvas pixels
let current = null;
let timer = null;
let requestNumber = 0;

function buildBars() {
  for (let digit = 0; digit < 10; digit += 1) {
    const item = document.createElement("li");
    item.dataset.digit = String(digit);
    item.innerHTML = `<span>${digit}</span><span class="bar"><span></span></span><span class="value">–</span>`;
    bars.appendChild(item);
  }
}

function redraw() {
  context.fillStyle = "white";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "black";
  context.lineWidth = PEN_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  for (const stroke of strokes) {
    context.beginPath();
    context.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke.slice(1)) context.lineTo(x, y);
    if (stroke.length === 1) context.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
    context.stroke();
  }
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) / box.width) * canvas.width,
    ((event.clientY - box.top) / box.height) * canvas.height,
  ];
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  current = [point(event)];
  strokes.push(current);
  redraw();
});
canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  current.push(point(event));
  redraw();
  schedule();
});
function endStroke() {
  if (!current) return;
  current = null;
  schedule();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(predictCanvas, DEBOUNCE_MS);
}

function undo() {
  strokes.pop();
  redraw();
  strokes.length ? schedule() : showEmpty();
}

function clearAll() {
  strokes = [];
  redraw();
  showEmpty();
}

function showEmpty() {
  clearTimeout(timer);
  requestNumber += 1; // answers still in flight are now stale
  digitView.textContent = "–";
  statusView.textContent = "No digit found. Draw one.";
  statusView.classList.remove("uncertain");
  document.body.dataset.state = "empty";
  showBars(null);
  seen.clearRect(0, 0, 28, 28);
}

function showBars(probabilities) {
  const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  for (const item of bars.children) {
    const digit = Number(item.dataset.digit);
    const value = probabilities ? probabilities[digit] : 0;
    item.querySelector(".bar span").style.width = `${(100 * value).toFixed(1)}%`;
    item.querySelector(".value").textContent = probabilities ? `${(100 * value).toFixed(1)}%` : "–";
    item.classList.toggle("top", digit === best);
  }
}

function showPreprocessed(pixels) {
  const image = seen.createImageData(28, 28);
  pixels.flat().forEach((value, index) => {
    image.data.set([value, value, value, 255], index * 4);
  });
  seen.putImageData(image, 0, 0);
}

function showAnswer(answer) {
  if (answer.digit === null) {
    showEmpty();
    statusView.textContent = "No digit found.";
    return;
  }
  digitView.textContent = answer.name; // answer.digit is the class index
  const percent = (100 * answer.confidence).toFixed(1);
  statusView.textContent = answer.uncertain
    ? `Unsure: ${percent}% confident`
    : `${percent}% confident`;
  statusView.classList.toggle("uncertain", answer.uncertain);
  document.body.dataset.state = "answered";
  showBars(answer.probabilities);
  showPreprocessed(answer.preprocessed);
}

async function send(body) {
  const number = ++requestNumber;
  try {
    const response = await fetch("/api/predict", { method: "POST", body });
    const answer = await response.json();
    if (number !== requestNumber) return; // a newer drawing is on its way
    if (!response.ok) {
      digitView.textContent = "!";
      statusView.textContent = answer.detail || `Error ${response.status}`;
      statusView.classList.add("uncertain");
      document.body.dataset.state = "error";
      return;
    }
    showAnswer(answer);
  } catch (error) {
    if (number === requestNumber) statusView.textContent = `Cannot reach the server (${error})`;
  }
}

function predictCanvas() {
  if (!strokes.length) return showEmpty();
  canvas.toBlob((blob) => {
    const form = new FormData();
    form.append("file", blob, "drawing.png");
    send(form);
  }, "image/png");
}

function predictFile(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  // Show the uploaded picture on the canvas, fitted, so people see what was read.
  const url = URL.createObjectURL(file);
  const picture = new Image();
  picture.onload = () => {
    strokes = [];
    redraw();
    const scale = Math.min(canvas.width / picture.width, canvas.height / picture.height);
    const width = picture.width * scale;
    const height = picture.height * scale;
    context.drawImage(picture, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
    URL.revokeObjectURL(url);
  };
  picture.src = url;
  send(form);
}

document.getElementById("undo").addEventListener("click", undo);
document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("upload").addEventListener("change", (event) => {
  predictFile(event.target.files[0]);
  event.target.value = "";
});
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Escape") {
    clearAll();
  }
});
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropZone.addEventListener(name, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  predictFile(event.dataTransfer.files[0]);
});

fetch("/api/health")
  .then((response) => response.json())
  .then((health) => {
    document.getElementById("model-name").textContent =
      health.model ? `Model: ${health.model}${health.preset ? ` (${health.preset})` : ""}.` : "";
  })
  .catch(() => {});

buildBars();
redraw();
showEmpty();
statusView.textContent = "Draw a digit to start.";
