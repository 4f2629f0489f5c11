// striate explore: the page draws; the server (Python, striate's own API) computes everything.
// Plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  model: null, layers: [], byKey: {}, run: null, inputId: null,
  pending: undefined, busy: false, timer: null, lastImage: null,
  detail: null, arith: null, playing: null, cards: {},
  sweep: null, sweepKey: null, history: { batch: [], val: [] },
};

// ----- helpers -----------------------------------------------------------------------------------
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const json = await response.json();
  if (!response.ok) throw new Error(json.error || response.statusText);
  return json;
}

function status(text) { $("status").textContent = text || ""; }

function bytes(b64) {
  const s = atob(b64);
  const a = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
  return a;
}

function lut(stops) {
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(x), stops.length - 2);
    const t = x - k;
    for (let c = 0; c < 3; c++) {
      table[3 * i + c] = Math.round(stops[k][c] * (1 - t) + stops[k + 1][c] * t);
    }
  }
  return table;
}
const VIRIDIS = lut([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]);
const GREY = lut([[0, 0, 0], [255, 255, 255]]);
const HOT = lut([[0, 0, 0], [200, 0, 0], [255, 200, 0], [255, 255, 255]]);
const RDBU = lut([[33, 102, 172], [247, 247, 247], [178, 24, 43]]);
const JET = lut([[0, 0, 143], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0], [128, 0, 0]]);

// Paint one plane (h x w bytes from `data` at `offset`) through a colour table.
function paintPlane(canvas, data, offset, h, w, table, alpha) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = data[offset + i];
    image.data[4 * i] = table[3 * v];
    image.data[4 * i + 1] = table[3 * v + 1];
    image.data[4 * i + 2] = table[3 * v + 2];
    image.data[4 * i + 3] = alpha === undefined ? 255 : alpha;
  }
  ctx.putImageData(image, 0, 0);
}

// Paint an image payload {height, width, channels, data} (uint8, H x W x C).
function paintImage(canvas, payload) {
  const { height: h, width: w, channels: c } = payload;
  const data = bytes(payload.data);
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = data[c * i + (c === 3 ? k : 0)];
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toFixed(digits)).toString();
}
const shape = (s) => (s ? s.join("×") : "–");
const count = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function kindOf(layer) {
  const t = layer.type.toLowerCase();
  if (t.includes("conv")) return "conv";
  if (t.includes("pool") || t.includes("subsampling")) return "pool";
  if (t.includes("dense") || t.includes("linear")) return "dense";
  return "";
}

// ----- the model and its layer column ------------------------------------------------------------
async function loadModel() {
  const model = await api("/api/model");
  S.model = model;
  S.layers = model.layers;
  S.byKey = Object.fromEntries(model.layers.map((l, i) => [l.key, { ...l, index: i }]));
  $("model-title").textContent = model.title;
  $("model-facts").textContent = `${model.name} · input ${shape(model.input_shape)} · ` +
    `${count(model.total_params)} parameters · ${count(model.total_macs)} multiply-adds · ` +
    `${model.layers.length} layers`;
  S.limit = model.layers.length > 120 ? 6 : model.layers.length > 40 ? 12 : 16;
  S.mapMax = model.layers.length > 20 ? 40 : 64;
  buildLayers();
  fillClassSelect();
  if (!model.is_image) {
    for (const part of ["draw-area", "samples", "upload-row", "seen"]) {
      $(part).classList.add("hidden");
    }
    $("no-image").classList.remove("hidden");
    $("no-image").textContent = `This model's input (${shape(model.input_shape)}) is not an ` +
      "image: a seeded random input is shown.";
  }
  if (model.live) startLive();
}

function buildLayers() {
  const root = $("layers");
  root.textContent = "";
  S.cards = {};
  let group = null;
  S.layers.forEach((layer, index) => {
    if (layer.group !== group) {
      group = layer.group;
      if (group) root.appendChild(el("div", "group-label", group));
    }
    const card = el("div", `layer ${kindOf(layer)}`);
    card.dataset.key = layer.key;
    if (layer.sources.length > 1) card.classList.add("merge");
    const head = el("div", "head");
    // a block's output: ⊕ where it sums or concatenates several layers
    const name = layer.block ? `${layer.sources.length > 1 ? "⊕ " : ""}${layer.key}` :
      layer.key.slice(group ? group.length + 1 : 0);
    head.appendChild(el("span", "key mono", name));
    head.appendChild(el("span", "type", layer.type));
    const facts = [`→ ${shape(layer.output_shape)}`, `${count(layer.params)} params`];
    if (layer.kernel) facts.push(`k ${layer.kernel.join("×")} s ${layer.stride.join("×")}`);
    if (layer.receptive_field) facts.push(`RF ${layer.receptive_field.join("×")}`);
    head.appendChild(el("span", "facts", facts.join(" · ")));
    const previous = index === 0 ? "input" : S.layers[index - 1].key;
    const others = layer.sources.filter((s) => s !== previous);
    if (others.length || layer.sources.length > 1) {
      head.appendChild(el("span", "from", "← " + layer.sources.join(" + ")));
    }
    card.appendChild(head);
    const maps = el("div", "maps");
    card.appendChild(maps);
    root.appendChild(card);
    S.cards[layer.key] = { card, maps, canvases: [] };
  });
  requestAnimationFrame(drawArcs);
}

// Arcs in the left gutter for every input that is not the layer just above: shortcuts,
// the branches of an Inception module, DenseNet's concatenations.
function drawArcs() {
  const svg = $("arcs");
  const network = $("network").getBoundingClientRect();
  const edges = [];
  S.layers.forEach((layer, index) => {
    layer.sources.forEach((source) => {
      const from = source === "input" ? -1 : S.byKey[source] ? S.byKey[source].index : -2;
      if (from === -2 || from === index - 1) return;
      edges.push({ from, to: index });
    });
  });
  const box = (i) => S.cards[S.layers[i].key].card.getBoundingClientRect();
  const spans = edges.map((e) => {
    const y1 = e.from < 0 ? 0 : box(e.from).top + 12 - network.top;
    const y2 = box(e.to).top + 10 - network.top;
    return { ...e, y1, y2 };
  }).sort((a, b) => (a.y2 - a.y1) - (b.y2 - b.y1));
  const lanes = [];
  spans.forEach((s) => {
    let lane = 0;
    while ((lanes[lane] || []).some((o) => o.y1 < s.y2 && s.y1 < o.y2)) lane++;
    (lanes[lane] = lanes[lane] || []).push(s);
    s.lane = lane;
  });
  const gutter = 12 + 5 * Math.min(lanes.length, 12);
  $("layers").style.setProperty("--gutter", `${gutter}px`);
  const parts = spans.map((s) => {
    const x = gutter - 8 - 5 * Math.min(s.lane, 11);
    return `<path d="M${gutter} ${s.y1} H${x} V${s.y2} H${gutter - 1}" />`;
  });
  svg.innerHTML = `<g fill="none" stroke="#7b5fc7" stroke-width="1.3" opacity="0.8">` +
    parts.join("") + "</g>";
}
window.addEventListener("resize", () => requestAnimationFrame(drawArcs));

function mapSize(h, w) {
  if (h === 1 && w === 1) return [14, 14];
  if (h === 1) return [10, Math.min(260, Math.max(40, w * 2))];
  const side = Math.min(S.mapMax, Math.max(22, 3 * Math.max(h, w)));
  return h >= w ? [side, Math.round((side * w) / h)] : [Math.round((side * h) / w), side];
}

function fillMaps(maps) {
  for (const [key, payload] of Object.entries(maps)) {
    const entry = S.cards[key];
    if (!entry) continue;
    const data = bytes(payload.data);
    const { height: h, width: w, shown } = payload;
    if (entry.canvases.length !== shown) {
      entry.maps.textContent = "";
      entry.canvases = [];
      for (let c = 0; c < shown; c++) {
        const canvas = el("canvas");
        canvas.className = "fmap";
        canvas.dataset.key = key;
        canvas.dataset.channel = c;
        canvas.title = `${key} channel ${c}`;
        const [dh, dw] = mapSize(h, w);
        canvas.style.height = `${dh}px`;
        canvas.style.width = `${dw}px`;
        canvas.addEventListener("click", () => openDetail(key, c));
        entry.maps.appendChild(canvas);
        entry.canvases.push(canvas);
      }
      if (payload.channels > shown) {
        entry.maps.appendChild(el("span", "more", `+${payload.channels - shown} more`));
      }
    }
    for (let c = 0; c < shown; c++) {
      paintPlane(entry.canvases[c], data, c * h * w, h, w, VIRIDIS);
    }
  }
  requestAnimationFrame(drawArcs);
}

// ----- input: drawing, uploads, samples ----------------------------------------------------------
const draw = $("draw");
const pen = draw.getContext("2d");
function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, draw.width, draw.height);
}
clearCanvas();
let drawing = false;
let last = null;
function point(event) {
  const r = draw.getBoundingClientRect();
  return [(event.clientX - r.left) * (draw.width / r.width),
    (event.clientY - r.top) * (draw.height / r.height)];
}
function stroke(p) {
  pen.strokeStyle = "#fff";
  pen.lineWidth = Number($("brush").value);
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(...(last || p));
  pen.lineTo(...p);
  pen.stroke();
  last = p;
}
draw.addEventListener("pointerdown", (e) => {
  drawing = true; last = null;
  draw.setPointerCapture && e.pointerId !== undefined && draw.setPointerCapture(e.pointerId);
  stroke(point(e));
  requestRun("canvas");
});
draw.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  stroke(point(e));
  requestRun("canvas");
});
for (const name of ["pointerup", "pointercancel", "pointerleave"]) {
  draw.addEventListener(name, () => {
    if (drawing) requestRun("canvas");
    drawing = false; last = null;
  });
}
$("clear").addEventListener("click", () => { clearCanvas(); requestRun("canvas"); });

function showOnCanvas(url) {
  const image = new Image();
  image.onload = () => {
    clearCanvas();
    const scale = Math.min(draw.width / image.width, draw.height / image.height);
    const w = image.width * scale, h = image.height * scale;
    pen.imageSmoothingEnabled = scale < 4;
    pen.drawImage(image, (draw.width - w) / 2, (draw.height - h) / 2, w, h);
  };
  image.src = url;
}
function useFile(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => { showOnCanvas(reader.result); requestRun(reader.result); };
  reader.readAsDataURL(file);
}
$("upload").addEventListener("change", (e) => useFile(e.target.files[0]));
const area = $("draw-area");
area.addEventListener("dragover", (e) => { e.preventDefault(); area.classList.add("dragging"); });
area.addEventListener("dragleave", () => area.classList.remove("dragging"));
area.addEventListener("drop", (e) => {
  e.preventDefault();
  area.classList.remove("dragging");
  useFile(e.dataTransfer.files[0]);
});

async function loadSamples() {
  const { samples } = await api("/api/samples");
  const box = $("samples");
  samples.forEach((sample) => {
    const img = el("img");
    img.src = sample.image;
    img.alt = img.title = sample.name;
    img.addEventListener("click", () => { showOnCanvas(sample.image); requestRun(sample.image); });
    box.appendChild(img);
  });
}

// One request at a time; while it runs, the newest input waits (drawing stays smooth).
function requestRun(image) {
  S.pending = image;
  if (S.busy) return;
  clearTimeout(S.timer);
  S.timer = setTimeout(flush, 90);
}
async function flush() {
  if (S.pending === undefined) return;
  let image = S.pending;
  S.pending = undefined;
  if (image === "canvas") image = draw.toDataURL("image/png");
  S.busy = true;
  status("computing…");
  try {
    const run = await api("/api/run", { image, top_k: 5, limit: S.limit });
    S.lastImage = image;
    onRun(run);
    status("");
  } catch (error) {
    status(error.message);
  } finally {
    S.busy = false;
    if (S.pending !== undefined) flush();
  }
}

function onRun(run) {
  S.run = run;
  S.inputId = run.input_id;
  if (run.input) {
    paintImage($("model-input"), run.input);
    $("input-note").textContent = `what the model sees: ${shape(S.model.input_shape)}` +
      (run.note ? ` (${run.note})` : "");
  }
  showPrediction(run.prediction);
  fillMaps(run.maps);
  if (S.detail) openDetail(S.detail.key, S.detail.channel, true);
  if (S.arith) showArithmetic(S.arith.layer, S.arith.position, S.arith.channel, true);
  scheduleSlow();
}

function showPrediction(prediction) {
  const box = $("prediction");
  box.textContent = "";
  if (!prediction.top.length) {
    box.appendChild(el("div", "note", prediction.note || "no class scores"));
    return;
  }
  prediction.top.forEach((item, rank) => {
    const row = el("div", rank === 0 ? "bar first" : "bar");
    row.appendChild(el("span", "name", item.name));
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = `${(100 * item.p).toFixed(1)}%`;
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el("span", "p", `${(100 * item.p).toFixed(1)}%`));
    row.title = `class ${item.index}: logit ${fmt(item.logit)}`;
    box.appendChild(row);
  });
}

// The slower views (gradients) follow the input a little later.
let slowTimer = null;
function scheduleSlow() {
  clearTimeout(slowTimer);
  slowTimer = setTimeout(() => { explain(); attack(true); }, 350);
}

// ----- layer detail and the arithmetic -----------------------------------------------------------
async function openDetail(key, channel, quiet) {
  const layer = S.byKey[key];
  S.detail = { key, channel };
  document.querySelectorAll(".maps canvas.selected").forEach((c) => c.classList.remove("selected"));
  const small = S.cards[key] && S.cards[key].canvases[channel];
  if (small) small.classList.add("selected");
  $("detail-title").textContent = `${key} · channel ${channel}`;
  $("detail-empty").classList.add("hidden");
  $("detail").classList.remove("hidden");
  const facts = [
    `<b>${layer.type}</b>`, `input ${shape(layer.input_shape)}`,
    `output ${shape(layer.output_shape)}`, `${count(layer.params)} parameters`,
    `${count(layer.macs)} multiply-adds`,
    layer.kernel ? `window ${layer.kernel.join("×")}, stride ${layer.stride.join("×")}` : "",
    layer.receptive_field ? `receptive field ${layer.receptive_field.join("×")} ` +
      `(jump ${layer.jump.join("×")})` : "",
    layer.arithmetic ? "<i>click a value to see its arithmetic</i>" : "",
  ];
  try {
    const { maps } = await api("/api/maps", { input_id: S.inputId, layer: key });
    S.detail.maps = maps;
    const data = bytes(maps.data);
    const { height: h, width: w } = maps;
    const c = Math.min(channel, maps.shown - 1);
    paintPlane($("big-map"), data, c * h * w, h, w, VIRIDIS);
    const side = 256 / Math.max(h, w);
    $("big-map").style.height = h === 1 && w > 1 ? "24px" : `${Math.round(side * h)}px`;
    $("big-map").style.width = `${Math.round(side * w)}px`;
    markBigMap();
    facts.push(`channel ${c}: min ${fmt(maps.min[c])}, max ${fmt(maps.max[c])}`);
    $("detail-facts").innerHTML = facts.filter(Boolean).join("<br>");
    const all = $("all-maps");
    if (!quiet || all.childElementCount !== maps.shown) {
      all.textContent = "";
      for (let k = 0; k < maps.shown; k++) {
        const canvas = el("canvas");
        canvas.title = `channel ${k}`;
        canvas.addEventListener("click", () => openDetail(key, k));
        all.appendChild(canvas);
      }
    }
    [...all.children].forEach((canvas, k) => {
      paintPlane(canvas, data, k * h * w, h, w, VIRIDIS);
      canvas.classList.toggle("selected", k === c);
    });
  } catch (error) {
    status(error.message);
  }
}

function markBigMap() {
  if (!S.detail || !S.arith || S.arith.layer !== S.detail.key) return;
  const canvas = $("big-map");
  const ctx = canvas.getContext("2d");
  const [i, j] = S.arith.position.length === 2 ? S.arith.position : [0, S.arith.position[0]];
  ctx.strokeStyle = "#ff7a00";
  ctx.lineWidth = Math.max(canvas.width, canvas.height) / 100;
  ctx.strokeRect(j, i, 1, 1);
}

$("big-map").addEventListener("click", (event) => {
  if (!S.detail || !S.detail.maps) return;
  const layer = S.byKey[S.detail.key];
  const r = event.target.getBoundingClientRect();
  const { height: h, width: w } = S.detail.maps;
  const i = Math.min(h - 1, Math.floor(((event.clientY - r.top) / r.height) * h));
  const j = Math.min(w - 1, Math.floor(((event.clientX - r.left) / r.width) * w));
  if (!layer.arithmetic) {
    status(`${layer.type} is not a convolution or pooling layer: no arithmetic to show`);
    return;
  }
  const position = layer.output_shape.length === 3 ? [i, j] : [j];
  showArithmetic(S.detail.key, position, S.detail.channel);
});

async function showArithmetic(layer, position, channel, quiet, inChannel) {
  const keep = S.arith && S.arith.layer === layer ? S.arith.inChannel : undefined;
  const wanted = inChannel !== undefined ? inChannel : keep;
  try {
    const a = await api("/api/arithmetic", {
      input_id: S.inputId, layer, position, channel, in_channel: wanted,
    });
    S.arith = { layer, position, channel, inChannel: a.plane_channel, data: a };
    renderArithmetic(a);
    if (S.detail && S.detail.key === layer && S.detail.maps) {
      const { height: h, width: w } = S.detail.maps;
      const shown = Math.min(channel, S.detail.maps.shown - 1);
      paintPlane($("big-map"), bytes(S.detail.maps.data), shown * h * w, h, w, VIRIDIS);
      markBigMap();
    }
  } catch (error) {
    if (!quiet) status(error.message);
  }
}

function grid(box, rows, cols, cell) {
  box.textContent = "";
  box.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  for (let u = 0; u < rows; u++) {
    for (let v = 0; v < cols; v++) box.appendChild(cell(u, v));
  }
}

function renderArithmetic(a) {
  $("arith-empty").classList.add("hidden");
  $("arith").classList.remove("hidden");
  const where = a.position.join(", ");
  $("arith-title").textContent =
    `${a.layer} (${a.type}) · output [${where}, ${a.channel}] = ${fmt(a.value, 6)}`;
  const c = a.channels.indexOf(a.plane_channel);
  const multi = a.kind === "conv" && a.channels.length > 1;
  $("arith-channel-box").classList.toggle("hidden", !multi);
  $("arith-channel").textContent = `${a.plane_channel} (${c + 1} of ${a.channels.length})`;
  const [kh, kw] = a.kernel_size;
  const big = kh * kw > 121;
  const cellOf = (matrix, u, v, options = {}) => {
    const value = a.kind === "conv" ? matrix[u][v][c] : matrix[u][v];
    const pad = a.padding[u][v];
    const div = el("div", "", pad && options.pad ? "pad" : fmt(value, 3));
    if (pad && options.pad) div.className = "pad";
    if (value < 0) div.classList.add("neg");
    if (options.win && a.winner && a.winner[0] === u && a.winner[1] === v) div.classList.add("win");
    div.title = `tap (${u}, ${v}) at input (${a.rows[u]}, ${a.cols[v]})`;
    return div;
  };
  $("fig-kernel").classList.toggle("hidden", a.kind !== "conv" || big);
  $("fig-products").classList.toggle("hidden", a.kind !== "conv" || big);
  if (!big) {
    if (a.kind === "conv") {
      grid($("arith-kernel"), kh, kw, (u, v) => cellOf(a.kernel, u, v));
      grid($("arith-products"), kh, kw, (u, v) => cellOf(a.products, u, v));
    }
    grid($("arith-window"), kh, kw, (u, v) => cellOf(a.window, u, v, { pad: true, win: true }));
  } else {
    $("arith-window").textContent = `${kh}×${kw} window: too large to list`;
  }
  drawPlane(a);
  const ok = Math.abs(a.computed - a.value) <= 1e-4 * (1 + Math.abs(a.value));
  const check = `<span class="${ok ? "ok" : "bad"}">${ok ? "✓ equal" : "✗ differs"}</span>`;
  const lines = [];
  if (a.kind === "conv") {
    const n = kh * kw * a.channels.length;
    if (a.channels.length > 1 && a.channels.length <= 8) {
      lines.push("per input channel: " + a.channel_sums.map((s, k) =>
        `ch${a.channels[k]} ${fmt(s)}`).join(" + "));
    }
    lines.push(`Σ of ${n} products (${kh}×${kw}×${a.channels.length}) = ${fmt(a.sum, 6)}`);
    lines.push(`+ bias ${fmt(a.bias, 6)} = ${fmt(a.pre_activation, 6)}`);
    if (a.activation) {
      lines.push(`${a.activation}(${fmt(a.pre_activation, 6)}) = ${fmt(a.computed, 6)}`);
    }
  } else if (a.kind === "max") {
    lines.push(`max of the window (padding never wins) = ${fmt(a.computed, 6)}` +
      ` at tap (${a.winner.join(", ")})`);
  } else {
    lines.push(`Σ window = ${fmt(a.sum, 6)}; ÷ ${a.count} cells = ${fmt(a.mean, 6)}`);
    if (a.kind === "subsampling") {
      lines.push(`× coefficient ${fmt(a.coefficient)} + bias ${fmt(a.bias)} = ` +
        `${fmt(a.pre_activation, 6)}; tanh → ${fmt(a.computed, 6)}`);
    }
  }
  lines.push(`layer output = ${fmt(a.value, 6)} ${check}`);
  lines.push(`<span class="note">stride ${a.stride.join("×")}, dilation ${a.dilation.join("×")},` +
    ` padding ${a.pads.map((p) => p.join("+")).join(", ")}; input ${shape(a.input_shape)} → ` +
    `output ${shape(a.output_shape)}</span>`);
  $("arith-sum").innerHTML = lines.join("<br>");
}

// The input plane with its padding (grey) and the window's taps (orange).
function drawPlane(a) {
  const canvas = $("arith-plane");
  const p = a.plane;
  const data = bytes(p.data);
  const [[pt, pb], [pl, pr]] = a.pads;
  const H = p.height + pt + pb, W = p.width + pl + pr;
  const cell = Math.max(1, Math.floor(320 / Math.max(H, W)));
  canvas.width = W * cell; canvas.height = H * cell;
  canvas.style.width = `${(160 * W) / Math.max(H, W)}px`;
  canvas.style.height = `${(160 * H) / Math.max(H, W)}px`;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#c9ccd3";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < p.height; i++) {
    for (let j = 0; j < p.width; j++) {
      const v = data[i * p.width + j];
      ctx.fillStyle = `rgb(${GREY[3 * v]},${GREY[3 * v]},${GREY[3 * v]})`;
      ctx.fillRect((j + pl) * cell, (i + pt) * cell, cell, cell);
    }
  }
  ctx.fillStyle = "rgba(255,122,0,0.45)";
  ctx.strokeStyle = "#ff7a00";
  ctx.lineWidth = Math.max(1, cell / 6);
  for (const r of a.rows) {
    for (const c of a.cols) ctx.fillRect((c + pl) * cell, (r + pt) * cell, cell, cell);
  }
  const x0 = (a.cols[0] + pl) * cell, y0 = (a.rows[0] + pt) * cell;
  const x1 = (a.cols[a.cols.length - 1] + pl + 1) * cell;
  const y1 = (a.rows[a.rows.length - 1] + pt + 1) * cell;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  if (pt || pl || pb || pr) {
    ctx.strokeStyle = "#555";
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 2]);
    ctx.strokeRect(pl * cell + 0.5, pt * cell + 0.5, p.width * cell - 1, p.height * cell - 1);
    ctx.setLineDash([]);
  }
}

function step(delta) {
  if (!S.arith) return;
  const a = S.arith.data;
  const out = a.output_shape.length === 3 ? a.output_shape : [1, ...a.output_shape];
  const [h, w] = out;
  const [i, j] = a.position.length === 2 ? a.position : [0, a.position[0]];
  const k = ((i * w + j + delta) % (h * w) + h * w) % (h * w);
  const next = [Math.floor(k / w), k % w];
  showArithmetic(S.arith.layer, a.position.length === 2 ? next : [next[1]], S.arith.channel);
}
$("step-prev").addEventListener("click", () => step(-1));
$("step-next").addEventListener("click", () => step(1));
$("step-play").addEventListener("click", () => {
  if (S.playing) {
    clearInterval(S.playing); S.playing = null; $("step-play").textContent = "play";
  } else {
    S.playing = setInterval(() => step(1), 700); $("step-play").textContent = "pause";
  }
});
function switchChannel(delta) {
  if (!S.arith) return;
  const a = S.arith.data;
  const k = a.channels.indexOf(a.plane_channel);
  const next = a.channels[(k + delta + a.channels.length) % a.channels.length];
  showArithmetic(S.arith.layer, S.arith.position, S.arith.channel, false, next);
}
$("ch-prev").addEventListener("click", () => switchChannel(-1));
$("ch-next").addEventListener("click", () => switchChannel(1));

// ----- output-size sandbox -----------------------------------------------------------------------
async function sandbox() {
  const q = new URLSearchParams({
    size: $("sb-size").value, kernel: $("sb-kernel").value, stride: $("sb-stride").value,
    padding: $("sb-padding").value.trim() || "0", dilation: $("sb-dilation").value,
  });
  const box = $("sb-formula");
  try {
    const f = await api(`/api/formula?${q}`);
    const [ps, pe] = f.pads;
    let text = `O = ⌊(I + P<sub>start</sub> + P<sub>end</sub> − d(K−1) − 1) / S⌋ + 1<br>` +
      `&nbsp;&nbsp;= ⌊(${f.size} + ${ps} + ${pe} − ${f.dilation}·${f.kernel - 1} − 1) / ` +
      `${f.stride}⌋ + 1`;
    if (f.output === null) {
      text += `<br><span class="bad">${f.error}</span>`;
    } else {
      text += ` = ⌊${f.numerator} / ${f.stride}⌋ + 1 = <b>${f.output}</b>`;
      text += f.fits ? "<br>the windows cover the padded input exactly" :
        `<br>the last ${f.dropped} padded input row${f.dropped > 1 ? "s are" : " is"} never read`;
    }
    box.innerHTML = text;
    drawSandbox(f);
  } catch (error) {
    box.textContent = error.message;
  }
}
function drawSandbox(f) {
  const svg = $("sb-diagram");
  const [ps, pe] = f.pads;
  const n = f.size + ps + pe;
  const cell = Math.min(24, 390 / Math.max(n, 1));
  const parts = [];
  for (let k = 0; k < n; k++) {
    const pad = k < ps || k >= ps + f.size;
    parts.push(`<rect x="${5 + k * cell}" y="52" width="${cell - 1}" height="${cell - 1}" ` +
      `fill="${pad ? "#d9dce2" : "#9fb6df"}"/>`);
  }
  (f.starts || []).slice(0, 12).forEach((s, o) => {
    const y = 6 + (o % 4) * 11;
    const taps = [];
    for (let t = 0; t < f.kernel; t++) {
      const x = 5 + (s + ps + t * f.dilation) * cell + cell / 2 - 0.5;
      taps.push(`<circle cx="${x}" cy="${y}" r="2.5"/>`);
    }
    const xa = 5 + (s + ps) * cell + cell / 2;
    const xb = 5 + (s + ps + f.dilation * (f.kernel - 1)) * cell + cell / 2;
    parts.push(`<g fill="#e8710a" stroke="#e8710a"><line x1="${xa}" y1="${y}" x2="${xb}" y2="${y}"/>` +
      taps.join("") + `</g>`);
  });
  svg.innerHTML = parts.join("");
}
for (const id of ["sb-size", "sb-kernel", "sb-stride", "sb-padding", "sb-dilation"]) {
  $(id).addEventListener("input", sandbox);
}

// ----- why this answer: saliency and Grad-CAM ----------------------------------------------------
function fillClassSelect() {
  const select = $("why-class");
  select.textContent = "";
  select.appendChild(new Option("predicted class", ""));
  S.model.class_names.forEach((name, i) => select.appendChild(new Option(`${i}: ${name}`, i)));
  const layers = $("why-layer");
  layers.textContent = "";
  layers.appendChild(new Option("last conv map", ""));
  S.model.conv_layers.forEach((key) => layers.appendChild(new Option(key, key)));
}
$("why-class").addEventListener("change", () => explain());
$("why-layer").addEventListener("change", () => explain());

async function explain() {
  if (!S.inputId || !S.model.num_classes) return;
  const target = $("why-class").value;
  try {
    const e = await api("/api/explain", {
      input_id: S.inputId, target: target === "" ? null : Number(target),
      layer: $("why-layer").value || null,
    });
    const s = e.saliency;
    paintPlane($("why-saliency"), bytes(s.data), 0, s.height, s.width, HOT);
    const cam = $("why-cam");
    if (e.input) paintImage(cam, e.input);
    if (e.gradcam) {
      const overlay = el("canvas");
      paintPlane(overlay, bytes(e.gradcam.data), 0, e.gradcam.height, e.gradcam.width, JET, 120);
      cam.getContext("2d").drawImage(overlay, 0, 0, cam.width, cam.height);
    }
    $("why-cam-caption").textContent = `Grad-CAM at ${e.layer || "–"}`;
    $("why-note").textContent = `for class ${e.target}: ${e.name}`;
  } catch (error) {
    $("why-note").textContent = error.message;
  }
}

// ----- first-layer filters -----------------------------------------------------------------------
async function loadFilters() {
  try {
    const f = await api("/api/filters");
    const box = $("filters");
    box.textContent = "";
    if (!f.layer) { box.appendChild(el("span", "note", f.note)); return; }
    $("filters-title").textContent = `${f.layer} ${shape(f.shape)}`;
    const data = bytes(f.data);
    const size = f.height * f.width * f.channels;
    for (let k = 0; k < f.count; k++) {
      const canvas = el("canvas");
      canvas.title = `filter ${k}`;
      if (f.rgb) {
        paintImage(canvas, { height: f.height, width: f.width, channels: 3,
          data: btoa(String.fromCharCode(...data.subarray(k * size, (k + 1) * size))) });
      } else {
        paintPlane(canvas, data, k * size, f.height, f.width, RDBU);
      }
      box.appendChild(canvas);
    }
  } catch (error) {
    status(error.message);
  }
}

// ----- adversarial examples ----------------------------------------------------------------------
let attackTimer = null;
function attack(newInput) {
  clearTimeout(attackTimer);
  attackTimer = setTimeout(() => runAttack(newInput), 120);
}
async function runAttack() {
  if (!S.inputId) return;
  if (!S.model.is_image || !S.model.num_classes) {
    $("attack-note").textContent = "adversarial images need a model that classifies images";
    return;
  }
  const eps = Number($("attack-eps").value);
  const method = $("attack-method").value;
  const key = `${S.inputId} ${method}`;
  const sweep = S.sweepKey !== key;
  try {
    const a = await api("/api/attack", {
      input_id: S.inputId, eps, method, sweep, sweep_max: Number($("attack-eps").max),
    });
    if (sweep) { S.sweep = a; S.sweepKey = key; }
    paintImage($("attack-image"), a.image);
    const p = a.perturbation;
    paintPlane($("attack-noise"), bytes(p.data), 0, p.height, p.width, RDBU);
    const top = a.prediction.top[0];
    $("attack-caption").innerHTML = a.flipped ?
      `<b style="color:#c8372d">${top.name}</b> (${(100 * top.p).toFixed(0)}%): flipped` :
      `${top.name} (${(100 * top.p).toFixed(0)}%)`;
    drawSweep(eps);
  } catch (error) {
    $("attack-note").textContent = error.message;
  }
}
function drawSweep(eps) {
  const s = S.sweep;
  const svg = $("attack-sweep");
  if (!s || !s.sweep.length) { svg.innerHTML = ""; return; }
  const max = Number($("attack-eps").max);
  const X = (e) => (300 * e) / max, Y = (p) => 85 - 80 * p;
  const points = s.sweep.map((c) => `${X(c.eps)},${Y(c.p_label)}`);
  const dots = s.sweep.map((c) => `<circle cx="${X(c.eps)}" cy="${Y(c.p_label)}" r="3" ` +
    `fill="${c.predicted === s.label ? "#2f6fd6" : "#c8372d"}"><title>ε ${fmt(c.eps)}: ` +
    `${c.name}</title></circle>`);
  svg.innerHTML = `<polyline fill="none" stroke="#2f6fd6" points="0,${Y(1)} ${points.join(" ")}"/>` +
    dots.join("") + `<line x1="${X(eps)}" x2="${X(eps)}" y1="0" y2="90" stroke="#e8710a"/>`;
  $("attack-note").textContent = s.flip_eps === null ?
    `p(${s.label_name}) against ε: no flip up to ε = ${max}` :
    `p(${s.label_name}) against ε: the prediction flips at ε ≈ ${fmt(s.flip_eps, 3)} ` +
    `(red: another class wins)`;
}
$("attack-eps").addEventListener("input", () => {
  $("attack-eps-value").textContent = Number($("attack-eps").value).toFixed(3);
  attack();
});
$("attack-method").addEventListener("change", () => attack());

// ----- live training -----------------------------------------------------------------------------
function startLive() {
  $("training-panel").classList.remove("hidden");
  $("training-state").textContent = "running";
  const source = new EventSource("/api/events");
  let queued = false;
  const redraw = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; drawCurves(); });
  };
  source.addEventListener("batch", (e) => { S.history.batch.push(JSON.parse(e.data)); redraw(); });
  source.addEventListener("epoch", (e) => {
    const event = JSON.parse(e.data);
    S.history.val.push(event);
    $("training-numbers").textContent = `epoch ${event.epoch + 1}/${event.epochs}: ` +
      Object.entries(event.logs).filter(([k]) => !k.startsWith("time"))
        .map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
    redraw();
    loadFilters();
    if (S.lastImage) requestRun(S.lastImage);
    else requestRun("canvas");
  });
  source.addEventListener("end", () => {
    $("training-state").textContent = "finished";
    source.close();
  });
}
function drawCurves() {
  const batches = S.history.batch;
  if (!batches.length) return;
  const perEpoch = batches[0].batches || 1;
  const x = (b) => b.epoch * perEpoch + b.batch;
  const n = Math.max(...batches.map(x)) + 1;
  const X = (v) => (300 * v) / Math.max(n - 1, 1);
  const losses = batches.map((b) => b.loss).filter((v) => v !== null);
  const top = Math.max(...losses, 1e-6);
  const line = (values, Y, colour) => `<polyline fill="none" stroke="${colour}" ` +
    `stroke-width="1.2" points="${values.join(" ")}"/>`;
  $("loss-chart").innerHTML = line(batches.filter((b) => b.loss !== null)
    .map((b) => `${X(x(b))},${115 - (110 * b.loss) / top}`), null, "#c8372d") +
    `<text x="4" y="12" font-size="10">${fmt(top, 3)}</text>`;
  const val = S.history.val.filter((e) => e.logs["val/accuracy"] !== undefined &&
    e.logs["val/accuracy"] !== null);
  $("acc-chart").innerHTML = line(batches.map((b) => `${X(x(b))},${115 - 110 * b.accuracy}`),
    null, "#2f6fd6") + (val.length ? line(val.map((e) => `${X((e.epoch + 1) * perEpoch - 1)},` +
    `${115 - 110 * e.logs["val/accuracy"]}`), null, "#2e9d5b") : "") +
    `<text x="4" y="12" font-size="10">100%</text>`;
}

// ----- start -------------------------------------------------------------------------------------
(async function start() {
  try {
    await loadModel();
    loadSamples();
    loadFilters();
    sandbox();
    requestRun(S.model.is_image ? "canvas" : null);
  } catch (error) {
    status(error.message);
  }
})();
