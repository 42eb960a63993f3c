// The drawing page: strokes on a canvas, read by /api/predict while the pen
// moves (at most one request in flight, one every INTERIM_MS) and once more
// at pen-up; the answer is shown as a digit (or a number), bars and the 28x28
// image the model saw. Plain JavaScript, no libraries, nothing remote.
"use strict";

const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const digitView = document.getElementById("digit");
const statusView = document.getElementById("status");
const hintView = document.getElementById("hint");
const announcer = document.getElementById("announce");
const bars = document.getElementById("bars");
const digitList = document.getElementById("digits");
const seenCanvas = document.getElementById("preprocessed");
const seen = seenCanvas.getContext("2d");
const dropZone = document.getElementById("drop-zone");
const penChoice = document.getElementById("pen-width");
const multiChoice = document.getElementById("multi");

const INTERIM_MS = 100; // while drawing, at most one request this often
// Pen widths in canvas pixels (the canvas is 280 wide, MNIST's 28 times ten):
// "normal" is a marker as people draw digits; "thin" keeps small digits from
// becoming blobs once the server scales them up to MNIST's 20-pixel box.
const PEN_WIDTHS = { thin: 8, normal: 18, thick: 28 };
const SEND_SIDE = 200; // the drawing is sent downscaled to at most this many pixels a side
const TINY_SIDE = 70; // ink smaller than a quarter of the canvas: ask for a bigger digit
const UPLOAD_SIDE = 1000; // pictures are shrunk in the browser to at most this long a side
const UPLOAD_BYTES = 4 * 1024 * 1024; // under the server's 5 MB limit, with room to spare
const SENT_AS_IS = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]);

// What is on the canvas: strokes (each {width, points: [[x, y], ...]}) over an
// optional uploaded picture ({image, blob, name}).
let strokes = [];
let background = null;
let current = null; // the stroke being drawn
let currentPointer = null;
const pointersDown = new Set();
let gestureCancelled = false; // a second finger landed: ignore input until all lift
let undoStack = [];
let redoStack = [];

// Requests: `version` counts changes to the drawing, `epoch` counts replacements
// (clear, undo, upload) after which every answer in flight is stale.
let version = 0;
let epoch = 0;
let sentVersion = -1;
let shownVersion = -1;
let inFlight = false;
let lastSentAt = -Infinity;
let pumpTimer = null;
let penUp = null; // {version, at}: when the pen last lifted, for the latency figure

// Measurements the browser tests read: pen-up to settled answer, in ms.
window.mnistPage = { penUpToAnswer: [], interimAnswers: 0, maxInFlight: 0, requests: 0, sentAt: [], settled: true };
let requestsInFlight = 0;

function buildBars() {
  for (let digit = 0; digit < 10; digit += 1) {
    const item = document.createElement("li");
    item.dataset.digit = String(digit);
    item.innerHTML = `<span>${digit}</span><span class="bar"><span></span></span><span class="value">–</span>`;
    bars.appendChild(item);
  }
}

// ---- Drawing -------------------------------------------------------------

function paintStroke(stroke) {
  context.strokeStyle = "black";
  context.lineWidth = stroke.width;
  context.lineCap = "round";
  context.lineJoin = "round";
  const [first, ...rest] = stroke.points;
  context.beginPath();
  context.moveTo(first[0], first[1]);
  for (const [x, y] of rest) context.lineTo(x, y);
  if (!rest.length) context.lineTo(first[0] + 0.1, first[1]);
  context.stroke();
}

function redraw() {
  context.fillStyle = "white";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (background && background.image) {
    const { image } = background;
    const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
    const width = image.width * scale;
    const height = image.height * scale;
    context.drawImage(image, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
  }
  strokes.forEach(paintStroke);
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) / box.width) * canvas.width,
    ((event.clientY - box.top) / box.height) * canvas.height,
  ];
}

function snapshot() {
  return { strokes: strokes.slice(), background };
}

function remember() {
  undoStack.push(snapshot());
  redoStack = [];
}

canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return; // a right-button (or middle) drag draws nothing
  pointersDown.add(event.pointerId);
  if (pointersDown.size > 1) {
    // Two fingers are a pinch or a scroll, not a digit: drop the stroke begun.
    cancelStroke();
    gestureCancelled = true;
    return;
  }
  if (gestureCancelled) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  remember();
  current = { width: PEN_WIDTHS[penChoice.value] || PEN_WIDTHS.normal, points: [point(event)] };
  currentPointer = event.pointerId;
  strokes.push(current);
  paintStroke(current);
  changed();
});
canvas.addEventListener("pointermove", (event) => {
  if (!current || event.pointerId !== currentPointer) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) current.points.push(point(each));
  redraw();
  changed();
});
function pointerGone(event) {
  pointersDown.delete(event.pointerId);
  if (event.pointerId === currentPointer) endStroke();
  if (!pointersDown.size) gestureCancelled = false;
}
canvas.addEventListener("pointerup", pointerGone);
canvas.addEventListener("pointercancel", pointerGone);

function endStroke() {
  if (!current) return;
  current = null;
  currentPointer = null;
  penUp = { version, at: performance.now() };
  showHint();
  if (shownVersion === version) settle();
  else pump();
}

function cancelStroke() {
  if (!current) return;
  current = null;
  currentPointer = null;
  const before = undoStack.pop();
  strokes = before.strokes;
  background = before.background;
  replaced();
}

// ---- Undo, redo, clear ---------------------------------------------------

function restore(state) {
  strokes = state.strokes.slice();
  background = state.background;
  replaced();
}

function undo() {
  if (current || !undoStack.length) return;
  redoStack.push(snapshot());
  restore(undoStack.pop());
}

function redo() {
  if (current || !redoStack.length) return;
  undoStack.push(snapshot());
  restore(redoStack.pop());
}

function clearAll() {
  if (current || (!strokes.length && !background)) return;
  keepUnjudged();
  remember();
  strokes = [];
  background = null;
  replaced();
}

// The drawing was replaced rather than extended: drop answers in flight and read it afresh.
function replaced() {
  epoch += 1;
  redraw();
  updateButtons();
  if (!strokes.length && !background) {
    withdrawFeedback();
    showEmpty();
    announce("The canvas is empty.");
    window.mnistPage.settled = true;
    return;
  }
  penUp = null;
  changed();
}

function updateButtons() {
  document.getElementById("undo").disabled = !undoStack.length;
  document.getElementById("redo").disabled = !redoStack.length;
}

// ---- Reading the drawing -------------------------------------------------

function changed() {
  version += 1;
  withdrawFeedback();
  window.mnistPage.settled = false;
  updateButtons();
  pump();
}

function inkBox() {
  let left = Infinity;
  let top = Infinity;
  let right = -Infinity;
  let bottom = -Infinity;
  for (const stroke of strokes) {
    const half = stroke.width / 2;
    for (const [x, y] of stroke.points) {
      left = Math.min(left, x - half);
      top = Math.min(top, y - half);
      right = Math.max(right, x + half);
      bottom = Math.max(bottom, y + half);
    }
  }
  return { left, top, right, bottom, width: right - left, height: bottom - top };
}

// Pieces of ink side by side with a clear gap between them, as in "12".
function piecesOfInk() {
  const spans = strokes
    .map((stroke) => {
      const xs = stroke.points.map(([x]) => x);
      return [Math.min(...xs) - stroke.width / 2, Math.max(...xs) + stroke.width / 2, stroke.width];
    })
    .sort((a, b) => a[0] - b[0]);
  let pieces = 0;
  let reach = -Infinity;
  for (const [left, right, width] of spans) {
    if (left > reach + Math.max(width, 12)) pieces += 1;
    reach = Math.max(reach, right);
  }
  return pieces;
}

function dataUrlBlob(url) {
  const [head, data] = url.split(",");
  const bytes = atob(data);
  const array = new Uint8Array(bytes.length);
  for (let index = 0; index < bytes.length; index += 1) array[index] = bytes.charCodeAt(index);
  return new Blob([array], { type: head.slice(5, head.indexOf(";")) });
}

// The drawing as a small PNG: the ink's box, padded, at most SEND_SIDE a side.
// Made with toDataURL, which encodes at once; toBlob waits for the browser to
// be idle (about a second while the pen moves). The server does the MNIST
// preprocessing, the one preprocessing, on what arrives.
function drawingPng() {
  let left = 0;
  let top = 0;
  let width = canvas.width;
  let height = canvas.height;
  if (!background) {
    const box = inkBox();
    const pad = Math.max(12, 0.15 * Math.max(box.width, box.height));
    left = Math.max(0, Math.floor(box.left - pad));
    top = Math.max(0, Math.floor(box.top - pad));
    width = Math.min(canvas.width, Math.ceil(box.right + pad)) - left;
    height = Math.min(canvas.height, Math.ceil(box.bottom + pad)) - top;
  }
  const scale = Math.min(1, SEND_SIDE / Math.max(width, height));
  const small = document.createElement("canvas");
  small.width = Math.max(1, Math.round(width * scale));
  small.height = Math.max(1, Math.round(height * scale));
  const smallContext = small.getContext("2d");
  smallContext.fillStyle = "white";
  smallContext.fillRect(0, 0, small.width, small.height);
  smallContext.drawImage(canvas, left, top, width, height, 0, 0, small.width, small.height);
  window.mnistPage.sentSize = [small.width, small.height];
  return dataUrlBlob(small.toDataURL("image/png"));
}

function pump() {
  clearTimeout(pumpTimer);
  if (inFlight || sentVersion === version) return;
  if (!strokes.length && !background) return;
  const wait = current ? lastSentAt + INTERIM_MS - performance.now() : 0;
  if (wait > 0) {
    pumpTimer = setTimeout(pump, wait);
    return;
  }
  const form = new FormData();
  let multi = multiChoice.checked;
  if (background && !strokes.length) {
    form.append("file", background.blob, background.name); // an upload, as it was shrunk
  } else {
    form.append("file", drawingPng(), "drawing.png");
    multi = multi || (!background && piecesOfInk() > 1);
  }
  showHint();
  sentVersion = version;
  lastSentAt = performance.now();
  inFlight = true;
  request(form, multi, { version, epoch });
}

function showHint() {
  const box = strokes.length && !background ? inkBox() : null;
  const tiny = box && Math.max(box.width, box.height) < TINY_SIDE && !current;
  hintView.hidden = !tiny;
  hintView.textContent = tiny ? "Draw bigger: fill most of the square." : "";
}

async function request(form, multi, sent) {
  // The preview image is asked for by name; servers that always send it ignore the word.
  const why = showWhy.checked ? "&include=saliency" : "";
  const url = `/api/predict?include=preprocessed${why}${multi ? "&multi=true" : ""}`;
  requestsInFlight += 1;
  window.mnistPage.requests += 1;
  window.mnistPage.sentAt.push(performance.now());
  window.mnistPage.sentBytes = form.get("file").size;
  window.mnistPage.maxInFlight = Math.max(window.mnistPage.maxInFlight, requestsInFlight);
  let response = null;
  let answer = null;
  try {
    response = await fetch(url, { method: "POST", body: form });
    answer = await response.json().catch(() => ({}));
  } catch (error) {
    response = null;
  } finally {
    requestsInFlight -= 1;
    inFlight = false;
  }
  // Stale: the drawing was cleared or replaced meanwhile, or a newer answer is shown.
  if (sent.epoch !== epoch || sent.version < shownVersion) return pump();
  feedbackAnswer = response && response.ok ? answer : null; // what Right / Wrong will judge
  if (!response) {
    showError("The page cannot reach the server. Is mnist-cnn serve still running?");
  } else if (!response.ok) {
    showError(explain(response.status));
  } else {
    showAnswer(answer);
  }
  shownVersion = sent.version;
  if (current) window.mnistPage.interimAnswers += 1;
  if (!current && shownVersion === version) settle();
  pump();
}

// Error details name formats and libraries; people get a sentence about their picture.
function explain(status) {
  if (status === 413) return "That picture is too large to read. Try one under 5 MB.";
  if (status === 415) return "That file is not a picture. Try a PNG or JPEG image.";
  if (status === 422) return "That picture could not be read; it may be damaged. Try another one.";
  if (status >= 500) return "The server could not read that. Please try again.";
  return "Something went wrong reading that. Please try again.";
}

// The answer on screen is for the drawing as it is now, with the pen up.
function settle() {
  if (penUp && penUp.version === version) {
    window.mnistPage.penUpToAnswer.push(performance.now() - penUp.at);
    penUp = null;
  }
  offerFeedback(); // after the latency figure: the buttons are not part of reading
  window.mnistPage.settled = true;
  announce(statusView.dataset.spoken || statusView.textContent);
}

function announce(text) {
  announcer.textContent = text;
}

// ---- Showing the answer --------------------------------------------------

function setDigit(text, kind) {
  digitView.textContent = text;
  digitView.className = `digit ${kind}`;
}

function setStatus(text, uncertain, spoken) {
  statusView.textContent = text;
  statusView.classList.toggle("uncertain", Boolean(uncertain));
  statusView.dataset.spoken = spoken || text;
}

function showEmpty() {
  clearTimeout(pumpTimer);
  setDigit("", "empty");
  setStatus("Draw a digit to start.");
  hintView.hidden = true;
  document.body.dataset.state = "empty";
  showBars(null);
  showDigits(null);
  showPreprocessed([]);
}

function showError(message) {
  setDigit("", "empty error");
  setStatus(message, true);
  document.body.dataset.state = "error";
  showBars(null);
  showDigits(null);
  showPreprocessed([]);
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

function showDigits(digits) {
  digitList.replaceChildren();
  digitList.hidden = !digits;
  bars.hidden = Boolean(digits);
  for (const digit of digits || []) {
    const item = document.createElement("li");
    item.textContent = digit.not_a_digit
      ? "?: not a digit"
      : `${digit.name}: ${(100 * digit.confidence).toFixed(1)}%`;
    item.classList.toggle("uncertain", digit.uncertain);
    digitList.appendChild(item);
  }
}

// The 28x28 images the model saw, side by side (one for a digit, several for a number).
function showPreprocessed(images) {
  seenCanvas.width = 28 * Math.max(1, images.length);
  seen.clearRect(0, 0, seenCanvas.width, 28);
  images.forEach((pixels, position) => {
    if (!pixels) return;
    const image = seen.createImageData(28, 28);
    pixels.flat().forEach((value, index) => {
      image.data.set([value, value, value, 255], index * 4);
    });
    seen.putImageData(image, 28 * position, 0);
  });
}

// The server's detector says "not a digit" (a dot, a letter, a scribble): the
// answer keeps its best guess in digit, but the page shows no digit for it.
function notADigit(answer) {
  return answer.not_a_digit === true || /not\b.*\bdigit/i.test(answer.reason || "");
}

function showAnswer(answer) {
  const several = answer.digits && answer.digits.length > 1;
  const single = answer.digit !== null && answer.digit !== undefined
    ? answer
    : answer.digits && answer.digits.length === 1 ? answer.digits[0] : null;
  if (notADigit(answer)) {
    showError("That does not look like a digit.");
    setDigit("?", "unsure");
    document.body.dataset.state = "not-a-digit";
    return;
  }
  if (!several && !single) {
    showEmpty();
    setStatus("No digit found. Draw one.");
    document.body.dataset.state = "answered";
    return;
  }
  document.body.dataset.state = "answered";
  if (several) {
    const unsure = answer.digits.some((digit) => digit.uncertain);
    setDigit(answer.number, unsure ? "unsure" : "");
    setStatus(
      unsure ? "Part of that does not look like a digit." : `The number ${answer.number}`,
      unsure,
      unsure ? "Part of that does not look like a digit." : `Read as the number ${answer.number}.`,
    );
    showBars(null);
    showDigits(answer.digits);
    showPreprocessed(answer.digits.map((digit) => digit.preprocessed));
    paintSaliency(answer.digits.map((digit) => digit.saliency));
    return;
  }
  const percent = (100 * single.confidence).toFixed(1);
  showDigits(null);
  showBars(single.probabilities);
  showPreprocessed([single.preprocessed]);
  paintSaliency([single.saliency]);
  if (single.uncertain) {
    setDigit(single.name, "unsure");
    setStatus(
      `That does not look like a digit. Best guess ${single.name}, ${percent}% confident.`,
      true,
    );
  } else {
    setDigit(single.name, ""); // single.digit is the class index
    setStatus(`${percent}% confident`, false, `Read as ${single.name}, ${percent}% confident.`);
  }
}

// ---- Feedback: Right / Wrong, and this visit's history ---------------------
// Under a settled answer of one digit (or "not a digit"): Right, or Wrong and
// then what it is. Each judgement is one row in the server's feedback database
// (POST /api/feedback), on this machine only; the strip below keeps this
// visit's drawings, and a click on one puts it back on the canvas.

const feedbackView = document.getElementById("feedback");
const historySection = document.getElementById("history-section");
const historyList = document.getElementById("history");
const NOT_A_DIGIT = "not a digit";
const HISTORY_LENGTH = 30; // drawings kept in the strip, newest first
const FEEDBACK_SIDE = 128; // the picture sent along is at most this many pixels a side
let feedbackAnswer = null; // the last answer received, for offerFeedback
let servedModel = null; // /api/model's name: feedback names the model that answered
let offered = null; // the answer on offer: {answer, preprocessed, version, epoch, drawing, ...}
window.mnistPage.feedback = { saved: [], failed: 0 };

// What the page showed, as the feedback's `answer`: a digit, or "not a digit"
// (also for an uncertain answer, which the page calls not a digit). Numbers of
// several digits and answers without the 28x28 image are not offered.
function judgedAnswer(answer) {
  if (!answer) return null;
  if (notADigit(answer)) {
    return answer.preprocessed ? { answer: NOT_A_DIGIT, preprocessed: answer.preprocessed } : null;
  }
  const digits = answer.digits || [];
  const single = answer.digit !== null && answer.digit !== undefined ? answer : digits.length === 1 ? digits[0] : null;
  if (!single || !single.preprocessed || digits.length > 1) return null;
  return { answer: single.uncertain ? NOT_A_DIGIT : single.digit, preprocessed: single.preprocessed };
}

function offerFeedback() {
  if (offered && offered.version === version && offered.epoch === epoch) return;
  const given = judgedAnswer(feedbackAnswer);
  if (!given) {
    withdrawFeedback();
    return;
  }
  offered = { ...given, version, epoch, drawing: snapshot(), open: false };
  renderFeedback();
}

function withdrawFeedback() {
  offered = null;
  feedbackView.replaceChildren();
}

// The whole canvas, shrunk: a PNG for a drawing, a JPEG over a photo (smaller), under 32 KB.
function feedbackPicture() {
  const scale = Math.min(1, FEEDBACK_SIDE / Math.max(canvas.width, canvas.height));
  const small = document.createElement("canvas");
  small.width = Math.round(canvas.width * scale);
  small.height = Math.round(canvas.height * scale);
  small.getContext("2d").drawImage(canvas, 0, 0, small.width, small.height);
  return small.toDataURL(background ? "image/jpeg" : "image/png", 0.85);
}

function labelText(label) {
  return label === NOT_A_DIGIT ? "not a digit" : String(label);
}

function button(text, onClick, attributes = {}) {
  const made = document.createElement("button");
  made.type = "button";
  made.textContent = text;
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  made.addEventListener("click", onClick);
  return made;
}

// The block is built afresh each time: its buttons exist only while they can be used.
function renderFeedback() {
  const judged = offered;
  if (!judged) return;
  const parts = [];
  if (judged.saved) {
    const { label } = judged.saved;
    const text = label === judged.answer
      ? `Saved: ${labelText(label)} was right. Thank you.`
      : `Saved: it is ${labelText(label)}, not ${labelText(judged.answer)}. Thank you.`;
    const saved = paragraph(text, "feedback-saved");
    saved.tabIndex = -1; // focus lands here once the buttons that had it are gone
    parts.push(saved);
  } else {
    const question = paragraph(`Is ${labelText(judged.answer)} right?`, "feedback-question");
    question.id = "feedback-question";
    const row = document.createElement("div");
    row.className = "feedback-buttons";
    row.append(
      button("Right", () => sendFeedback(judged.answer), { id: "feedback-right" }),
      button("Wrong", toggleChoices, {
        id: "feedback-wrong", "aria-expanded": String(judged.open), "aria-controls": "feedback-choices",
      }),
    );
    parts.push(question, row);
    if (judged.open) parts.push(choices(judged));
    if (judged.error) parts.push(paragraph(judged.error, "feedback-failed"));
    for (const each of row.querySelectorAll("button")) each.disabled = Boolean(judged.sending);
  }
  feedbackView.replaceChildren(...parts);
}

function paragraph(text, className) {
  const made = document.createElement("p");
  made.className = className;
  made.textContent = text;
  return made;
}

// The other ten answers: 0-9 and "not a digit", less the one given.
function choices(judged) {
  const group = document.createElement("div");
  group.id = "feedback-choices";
  group.className = "feedback-choices";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "What is it?");
  const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, NOT_A_DIGIT].filter((label) => label !== judged.answer);
  for (const label of labels) {
    const name = label === NOT_A_DIGIT ? "Not a digit" : String(label);
    const choice = button(name, () => sendFeedback(label), { "data-label": String(label) });
    if (label !== NOT_A_DIGIT) choice.setAttribute("aria-label", `It is ${label}`);
    choice.disabled = Boolean(judged.sending);
    group.appendChild(choice);
  }
  // Escape closes the choices (and does not clear the canvas); a digit key picks that digit.
  group.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      toggleChoices();
    } else if (/^[0-9]$/.test(event.key) && Number(event.key) !== judged.answer) {
      event.preventDefault();
      sendFeedback(Number(event.key));
    }
  });
  return group;
}

function toggleChoices() {
  if (!offered || offered.sending) return;
  offered.open = !offered.open;
  renderFeedback();
  const target = offered.open ? "#feedback-choices button" : "#feedback-wrong";
  feedbackView.querySelector(target).focus();
}

async function sendFeedback(label) {
  const judged = offered;
  if (!judged || judged.sending || judged.saved) return;
  judged.sending = true;
  judged.error = null;
  renderFeedback();
  const body = {
    // Made now, not when offered: most answers are never judged. The canvas still
    // holds the judged drawing, since any change withdraws the offer.
    preprocessed: judged.preprocessed, answer: judged.answer, label, source: "page", picture: feedbackPicture(),
  };
  if (servedModel) body.model = servedModel;
  let response = null;
  let result = {};
  try {
    response = await fetch("/api/feedback", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    result = await response.json().catch(() => ({}));
  } catch (error) {
    response = null;
  }
  judged.sending = false;
  if (response && response.status === 201) {
    judged.saved = { label, id: result.id };
    window.mnistPage.feedback.saved.push(result.id);
    addToHistory(judged, label);
    announce(label === judged.answer ? "Saved as right. Thank you." : `Saved: it is ${labelText(label)}.`);
  } else {
    window.mnistPage.feedback.failed += 1;
    judged.error = response
      ? `Not saved: ${result.detail || `the server answered ${response.status}`}.`
      : "Not saved: the page cannot reach the server.";
    announce(judged.error);
  }
  if (judged === offered) {
    renderFeedback();
    if (judged.saved) feedbackView.querySelector(".feedback-saved").focus();
    else feedbackView.querySelector("#feedback-right")?.focus();
  }
}

// A drawing cleared with an answer on offer, not judged, still joins the strip.
function keepUnjudged() {
  if (offered && !offered.saved && offered.version === version && offered.epoch === epoch) {
    addToHistory(offered, null);
  }
}

function addToHistory(judged, label) {
  const item = document.createElement("li");
  const { answer } = judged;
  const [verdict, verdictClass, spoken] = label === null
    ? ["not judged", "verdict-none", "not judged"]
    : label === answer
      ? ["✓ right", "verdict-right", "confirmed right"]
      : [`✗ is ${labelText(label)}`, "verdict-wrong", `corrected to ${labelText(label)}`];
  const show = button("", () => showAgain(judged.drawing), {
    class: "history-item",
    "aria-label": `Read as ${labelText(answer)}, ${spoken}. Show it again.`,
  });
  const thumbnail = document.createElement("canvas");
  thumbnail.width = 28;
  thumbnail.height = 28;
  thumbnail.setAttribute("aria-hidden", "true");
  const image = thumbnail.getContext("2d").createImageData(28, 28);
  judged.preprocessed.flat().forEach((value, index) => image.data.set([value, value, value, 255], index * 4));
  thumbnail.getContext("2d").putImageData(image, 0, 0);
  const answerText = document.createElement("span");
  answerText.textContent = answer === NOT_A_DIGIT ? "not a digit" : `read ${answer}`;
  const verdictText = document.createElement("span");
  verdictText.className = verdictClass;
  verdictText.textContent = verdict;
  show.append(thumbnail, answerText, verdictText);
  item.appendChild(show);
  historyList.prepend(item);
  while (historyList.children.length > HISTORY_LENGTH) historyList.lastChild.remove();
  historySection.hidden = false;
}

// Back on the canvas, read again; Undo returns to what was there.
function showAgain(drawing) {
  if (current) return;
  keepUnjudged();
  remember();
  restore(drawing);
}

// ---- Why this answer: the saliency overlay --------------------------------

// "Show why" asks the server for a saliency map per digit (include=saliency,
// about 169 extra forward passes each), so answers without it stay as quick.
const showWhy = document.getElementById("show-why");
// The map's colours, from dark purple to yellow (matplotlib's plasma, as in
// the figures of predict --explain and the report), laid over the grey image.
const SALIENCY_STOPS = [[13, 8, 135], [204, 71, 120], [240, 249, 33]];
const SALIENCY_OPACITY = 0.8;

function saliencyColour(value) {
  const scaled = Math.min(Math.max(value, 0), 1) * (SALIENCY_STOPS.length - 1);
  const low = Math.min(Math.floor(scaled), SALIENCY_STOPS.length - 2);
  const part = scaled - low;
  return SALIENCY_STOPS[low].map((channel, index) => channel + part * (SALIENCY_STOPS[low + 1][index] - channel));
}

// Blends each digit's map (28 rows of 28 numbers in [0, 1]) into its 28x28 image.
function paintSaliency(maps) {
  window.mnistPage.saliencyShown = false;
  if (!showWhy.checked) return;
  maps.forEach((map, position) => {
    if (!map) return;
    const image = seen.getImageData(28 * position, 0, 28, 28);
    map.flat().forEach((value, index) => {
      const opacity = SALIENCY_OPACITY * Math.min(Math.max(value, 0), 1);
      const colour = saliencyColour(value);
      for (let channel = 0; channel < 3; channel += 1) {
        const at = index * 4 + channel;
        image.data[at] = (1 - opacity) * image.data[at] + opacity * colour[channel];
      }
    });
    seen.putImageData(image, 28 * position, 0);
    window.mnistPage.saliencyShown = true;
  });
}

// Toggling asks again for the drawing as it is, with or without the maps.
showWhy.addEventListener("change", () => {
  sentVersion = -1;
  pump();
});

// ---- Uploads -------------------------------------------------------------

// The picture, decoded by the browser and shrunk to at most UPLOAD_SIDE a side
// when it is large, of a kind the server may not take (SVG), or near the 5 MB
// limit. What the browser cannot decode goes as it is, for the server to judge.
async function preparePicture(file) {
  const url = URL.createObjectURL(file);
  try {
    const picture = new Image();
    picture.src = url;
    await picture.decode();
    const vector = file.type === "image/svg+xml" || /\.svg$/i.test(file.name);
    let width = picture.naturalWidth || 300;
    let height = picture.naturalHeight || 300;
    const longest = Math.max(width, height);
    const side = vector ? Math.max(560, Math.min(longest, UPLOAD_SIDE)) : Math.min(longest, UPLOAD_SIDE);
    const scale = side / longest;
    width = Math.max(1, Math.round(width * scale));
    height = Math.max(1, Math.round(height * scale));
    const shrunk = document.createElement("canvas");
    shrunk.width = width;
    shrunk.height = height;
    const shrunkContext = shrunk.getContext("2d");
    shrunkContext.fillStyle = "white"; // transparent pictures are ink on white paper
    shrunkContext.fillRect(0, 0, width, height);
    shrunkContext.drawImage(picture, 0, 0, width, height);
    if (!vector && scale === 1 && file.size <= UPLOAD_BYTES && SENT_AS_IS.has(file.type)) {
      return { image: shrunk, blob: file, name: file.name };
    }
    const base = file.name.replace(/\.[^.]*$/, "") || "picture";
    let blob = dataUrlBlob(shrunk.toDataURL(file.type === "image/jpeg" ? "image/jpeg" : "image/png", 0.92));
    if (blob.size > UPLOAD_BYTES) blob = dataUrlBlob(shrunk.toDataURL("image/jpeg", 0.9));
    return { image: shrunk, blob, name: `${base}.${blob.type === "image/jpeg" ? "jpg" : "png"}` };
  } catch (error) {
    return { image: null, blob: file, name: file.name };
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function predictFile(file) {
  if (!file || current) return;
  const prepared = await preparePicture(file);
  remember();
  strokes = [];
  background = prepared; // its image is null when the browser could not decode it
  replaced();
  penUp = { version, at: performance.now() };
  // Nothing of the previous answer stays while this one is read.
  showBars(null);
  showDigits(null);
  showPreprocessed([]);
  hintView.hidden = true;
  setDigit("", "empty");
  setStatus("Reading the picture…");
  document.body.dataset.state = "reading";
}

// ---- Wiring --------------------------------------------------------------

document.getElementById("undo").addEventListener("click", undo);
document.getElementById("redo").addEventListener("click", redo);
document.getElementById("clear").addEventListener("click", clearAll);
multiChoice.addEventListener("change", () => {
  if (strokes.length || background) changed();
});
document.getElementById("upload").addEventListener("change", (event) => {
  predictFile(event.target.files[0]);
  event.target.value = "";
});
document.addEventListener("keydown", (event) => {
  const key = event.key.toLowerCase();
  const command = event.ctrlKey || event.metaKey;
  if (command && (key === "y" || (key === "z" && event.shiftKey))) {
    event.preventDefault();
    redo();
  } else if (command && key === "z") {
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

fetch("/api/model")
  .then((response) => (response.ok ? response.json() : {}))
  .then((model) => {
    servedModel = model.name || null;
    if (!model.preset) return;
    const accuracy = typeof model.test_accuracy === "number"
      ? `, ${(100 * model.test_accuracy).toFixed(1)}% test accuracy` : "";
    document.getElementById("model-name").textContent = `Model: ${model.preset} preset${accuracy}.`;
  })
  .catch(() => {});

buildBars();
redraw();
showEmpty();
updateButtons();
