// The page: chooses a model, has the worker make or restore its keys, registers the
// evaluation keys once, and sends only ciphertexts. Everything secret stays in worker.js.

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let nextId = 1;
const pending = new Map();

worker.onmessage = ({ data }) => {
  const p = pending.get(data.id);
  if (!p) return;
  if (data.progress) return p.progress?.(data.progress);
  pending.delete(data.id);
  if (data.error !== undefined) p.reject(new Error(data.error));
  else p.resolve(data.ok);
};
worker.onerror = (e) => {
  e.preventDefault();
  show(`The encryption worker failed to start: ${e.message || "unknown error"}`, true);
};

function call(op, args = {}, progress, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, progress });
    worker.postMessage({ id, op, args }, transfer);
  });
}

const state = { model: null, keyId: null, registered: false, busy: false, specs: new Map() };

function show(text, error = false) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
  m.className = error ? "error" : "";
}

function keyStatus(text, kind) {
  const s = $("key-status");
  s.textContent = text;
  s.dataset.state = kind;
  s.dataset.model = state.model ?? "";
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const bytes = (n) => (n < 10_000 ? `${n} B` : `${(n / 1e3).toFixed(0)} kB`);
const ms = (t) => `${t.toFixed(0)} ms`;

function headers(extra = {}) {
  const token = $("token").value.trim();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

// A fetch whose failure is one readable line.
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (e) {
    throw new Error(`Cannot reach the server (${e.message}). Is unseen serve running?`);
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText;
    try {
      const body = await response.json();
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    const err = new Error(`The server answered ${response.status} (${code}): ${message}`);
    err.code = code;
    throw err;
  }
  return response;
}

async function loadModels() {
  const select = $("model");
  try {
    const list = await (await api("v1/models")).json();
    // the page draws and reads gray pictures: models with a single-channel image input
    const cnn = list.models.filter((m) => m.kind === "cnn" && m.input?.Image?.[0] === 1);
    select.replaceChildren(
      ...cnn.map((m) => {
        const o = document.createElement("option");
        o.value = m.name;
        o.textContent = `${m.name}${m.dataset ? ` (${m.dataset})` : ""}`;
        return o;
      }),
    );
    if (!cnn.length) {
      select.replaceChildren(new Option("no model for pictures served"));
      keyStatus("This server serves no model this page can run.", "error");
      return;
    }
    select.disabled = false;
    await chooseModel(select.value);
  } catch (e) {
    select.replaceChildren(new Option("no models"));
    keyStatus(e.message, "error");
    show(e.message, true);
  }
}

async function uploadKeys() {
  const { evalKeys } = await call("evalKeys", { model: state.model });
  keyStatus(`Sending the evaluation keys (${mb(evalKeys.length)}, once)…`, "uploading");
  const reply = await (
    await api("v1/keys", {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: evalKeys,
    })
  ).json();
  if (reply.key_id !== state.keyId) {
    throw new Error(`The server registered the keys as ${reply.key_id}, expected ${state.keyId}`);
  }
  await call("registered", { model: state.model, registered: true });
  state.registered = true;
  $("b-keys").textContent = mb(evalKeys.length);
}

async function chooseModel(model) {
  state.model = model;
  state.keyId = null;
  $("classify").disabled = true;
  $("forget").disabled = true;
  show("");
  keyStatus("Reading the model's description…", "loading");
  $("t-keygen").textContent = "–";
  const bar = $("keygen-progress");
  try {
    const spec = await (await api(`v1/models/${encodeURIComponent(model)}`)).text();
    state.specs.set(model, JSON.parse(spec));
    keyStatus("Making keys in this page…", "making");
    bar.value = 0;
    const opened = await call("open", { model, spec }, ({ done, total }) => {
      bar.max = total;
      bar.value = done;
      keyStatus(`Making keys in this page: ${done} of ${total} rotation keys…`, "making");
    });
    if (state.model !== model) return;
    bar.max = 1;
    bar.value = 1;
    state.keyId = opened.keyId;
    state.registered = opened.registered;
    $("t-keygen").textContent = opened.made ? ms(opened.keygenMs) : "stored keys reused";
    $("b-keys").textContent = opened.registered ? `${mb(opened.evalKeysBytes)} (earlier)` : "–";
    if (!state.registered) await uploadKeys();
    keyStatus(`Keys ready (key id ${opened.keyId.slice(0, 12)}…).`, "ready");
    $("classify").disabled = false;
    $("forget").disabled = false;
  } catch (e) {
    keyStatus(e.message, "error");
    show(e.message, true);
    $("forget").disabled = false;
  }
}

// ----- drawing pad ---------------------------------------------------------------------------

const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  $("preview").getContext("2d").clearRect(0, 0, 112, 112);
}
clearPad();

let drawing = false;
function point(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...point(e));
  ctx.lineTo(...point(e));
  ctx.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineTo(...point(e));
  ctx.stroke();
});
pad.addEventListener("pointerup", () => (drawing = false));
pad.addEventListener("pointercancel", () => (drawing = false));

async function showPicture(file) {
  show("");
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    show(`${file.name || "That file"} is not a picture this browser can read (try a PNG or JPEG).`, true);
    return;
  }
  // the picture's own pixels go to the model's resize (as the CLI reads a PNG); the pad shows it
  const limit = 4096;
  if (bitmap.width > limit || bitmap.height > limit) {
    show(`That picture is ${bitmap.width}x${bitmap.height} pixels; at most ${limit} per side.`, true);
    return;
  }
  pad.width = bitmap.width;
  pad.height = bitmap.height;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
}

$("file").addEventListener("change", (e) => e.target.files[0] && showPicture(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (file) showPicture(file);
});
$("clear").addEventListener("click", () => {
  pad.width = 280;
  pad.height = 280;
  clearPad();
  show("");
});

// ----- classify -------------------------------------------------------------------------------

function drawPreview(gray, [rows, cols]) {
  const small = new ImageData(cols, rows);
  gray.forEach((v, i) => small.data.set([v, v, v, 255], i * 4));
  const tmp = new OffscreenCanvas(cols, rows);
  tmp.getContext("2d").putImageData(small, 0, 0);
  const p = $("preview").getContext("2d");
  p.imageSmoothingEnabled = false;
  p.clearRect(0, 0, 112, 112);
  p.drawImage(tmp, 0, 0, 112, 112);
}

function showResult(result, classes) {
  const bars = $("bars");
  bars.replaceChildren();
  result.probabilities.forEach((p, i) => {
    const name = document.createElement("span");
    name.textContent = classes[i] ?? String(i);
    const bar = document.createElement("div");
    bar.className = i === result.class ? "bar best" : "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p).toFixed(1)}%`;
    bars.append(name, bar, pct);
  });
  $("class").textContent = classes[result.class] ?? String(result.class);
  const r = $("result");
  r.dataset.class = String(result.class);
  r.dataset.state = "done";
}

async function infer(ciphertext) {
  return api(`v1/models/${encodeURIComponent(state.model)}/infer`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream", "unseen-key-id": state.keyId },
    body: ciphertext,
  });
}

async function classify() {
  if (state.busy || !state.keyId) return;
  state.busy = true;
  $("classify").disabled = true;
  $("result").dataset.state = "working";
  delete $("result").dataset.class;
  show("");
  try {
    const model = state.model;
    const image = ctx.getImageData(0, 0, pad.width, pad.height);
    const { gray, size } = await call("gray", { model, rgba: image.data, width: pad.width, height: pad.height });
    drawPreview(gray, size);
    if (!gray.some((v) => v > 0)) {
      throw new Error("The picture is empty (all black): draw a digit or drop a picture first.");
    }
    const { ciphertext, ms: encryptMs } = await call("encrypt", { model, gray });
    const sent = ciphertext.length;
    const started = performance.now();
    let response;
    try {
      response = await infer(ciphertext);
    } catch (e) {
      if (e.code !== "unknown_key") throw e;
      // the server no longer has the keys (evicted, or a new server): send them again
      await call("registered", { model, registered: false });
      state.registered = false;
      show("The server no longer had this page's evaluation keys (evicted or restarted); sent them again.");
      await uploadKeys();
      keyStatus(`Keys ready (key id ${state.keyId.slice(0, 12)}…).`, "ready");
      response = await infer(ciphertext);
    }
    const reply = new Uint8Array(await response.arrayBuffer());
    const received = reply.length; // the reply's buffer moves to the worker below
    const roundMs = performance.now() - started;
    const serverMs = Number(response.headers.get("unseen-server-ms"));
    const { result, ms: decryptMs } = await call("decrypt", { model, reply }, undefined, [reply.buffer]);
    showResult(result, state.specs.get(model)?.classes ?? []);
    $("t-encrypt").textContent = ms(encryptMs);
    $("t-server").textContent = Number.isFinite(serverMs) && serverMs > 0 ? ms(serverMs) : "–";
    $("t-round").textContent = ms(roundMs);
    $("t-decrypt").textContent = ms(decryptMs);
    $("b-io").textContent = `${bytes(sent)} / ${bytes(received)}`;
    $("result").dataset.timings = JSON.stringify({ encryptMs, decryptMs, roundMs, serverMs });
  } catch (e) {
    $("result").dataset.state = "error";
    show(e.message, true);
  } finally {
    state.busy = false;
    $("classify").disabled = !state.keyId;
  }
}

$("classify").addEventListener("click", classify);
$("model").addEventListener("change", (e) => chooseModel(e.target.value));
$("forget").addEventListener("click", async () => {
  if (!state.model) return;
  await call("forget", { model: state.model });
  show(`The keys for ${state.model} were deleted from this browser.`);
  await chooseModel(state.model);
});
window.addEventListener("unhandledrejection", (e) => show(`Unexpected error: ${e.reason?.message ?? e.reason}`, true));

loadModels();
