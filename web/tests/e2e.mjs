// End-to-end test of the browser client in Debian's Chromium, driven by playwright-core (no
// browser download). It starts `unseen serve --web web/dist` on loopback with two models, paints
// test images on the page's canvas and checks that the class the page shows equals the
// plaintext model's prediction; from the recorded traffic it checks that only evaluation keys
// and ciphertexts leave the page (never the secret key or the image); then a reload, bad
// input, an evicted key and a stopped server. Prints one JSON line of browser timings.
//
//   node web/tests/e2e.mjs        (UNSEEN_BIN, CHROMIUM, E2E_IMAGES, E2E_OUT may override)
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

const root = path.resolve(import.meta.dirname, "../..");
const bin = process.env.UNSEEN_BIN ?? path.join(root, "target/debug/unseen");
const images = Number(process.env.E2E_IMAGES ?? 20);
const out = process.env.E2E_OUT ?? path.join(root, "target/web-e2e");
// in the order the page lists them: the first one's keys are made when the page opens
const models = [
  { name: "ciphernet-fashion-mnist", data: "fashion-mnist" },
  { name: "ciphernet-mnist", data: "mnist" },
];
fs.mkdirSync(out, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "unseen-e2e-"));

// ----- the server -----------------------------------------------------------------------------

function startServer(dataDir, port = 0) {
  const args = ["serve", "--http", `127.0.0.1:${port}`, "--web", path.join(root, "web/dist")];
  for (const m of models) args.push("--model", path.join(root, "models", m.name));
  args.push("--data-dir", dataDir);
  const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 60_000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/HTTP API on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on("exit", (code) => reject(new Error(`server exited (${code}): ${log}`)));
  });
}

function stopServer(server) {
  return new Promise((resolve) => {
    server.proc.removeAllListeners("exit");
    server.proc.on("exit", resolve);
    server.proc.kill("SIGKILL");
  });
}

// ----- reference: test images and the plaintext model's classes ------------------------------

function testImages(data, n) {
  const raw = zlib.gunzipSync(fs.readFileSync(path.join(root, "data", data, "t10k-images-idx3-ubyte.gz")));
  return Array.from({ length: n }, (_, i) => raw.subarray(16 + i * 784, 16 + (i + 1) * 784));
}

function plaintextClasses(model, n) {
  const csv = path.join(scratch, `${model}.csv`);
  execFileSync(bin, ["eval", "--model", path.join(root, "models", model), "--limit", String(n), "--save-logits", csv], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  return fs
    .readFileSync(csv, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((row) => {
      const v = row.split(",").map(Number);
      return v.indexOf(Math.max(...v));
    });
}

// ----- the page -------------------------------------------------------------------------------

async function paint(page, pixels) {
  await page.evaluate((px) => {
    const pad = document.getElementById("pad");
    pad.width = 280;
    pad.height = 280;
    const ctx = pad.getContext("2d");
    px.forEach((v, i) => {
      ctx.fillStyle = `rgb(${v},${v},${v})`;
      ctx.fillRect((i % 28) * 10, Math.floor(i / 28) * 10, 10, 10);
    });
  }, Array.from(pixels));
}

async function classify(page) {
  await page.click("#classify");
  await page.waitForSelector('#result[data-state="done"], #result[data-state="error"]', { state: "attached", timeout: 120_000 });
  const r = await page.$eval("#result", (el) => ({ ...el.dataset }));
  const message = await page.$eval("#message", (el) => (el.hidden ? "" : el.textContent));
  return { state: r.state, cls: Number(r.class), timings: r.timings && JSON.parse(r.timings), message };
}

async function keysReady(page, model) {
  if ((await page.$eval("#model", (el) => el.value)) !== model) await page.selectOption("#model", model);
  await page.waitForSelector(`#key-status[data-state="ready"][data-model="${model}"]`, { timeout: 300_000 });
}

const storedSecret = (page, model) =>
  page.evaluate(
    (m) =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open("unseen");
        req.onsuccess = () => {
          const get = req.result.transaction("keys").objectStore("keys").get(m);
          get.onsuccess = () => resolve(Array.from(get.result.secretKey));
          get.onerror = () => reject(get.error);
        };
        req.onerror = () => reject(req.error);
      }),
    model,
  );

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

// ----- the test -------------------------------------------------------------------------------

let server = await startServer(path.join(scratch, "data"));
const origin = `http://127.0.0.1:${server.port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1400 } });
  const requests = [];
  context.on("request", (r) => requests.push({ url: r.url(), method: r.method(), headers: r.headers(), body: r.postDataBuffer() }));
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(origin + "/");
  const csp = (await page.request.get(origin + "/")).headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/, "the page has a strict Content-Security-Policy");

  const summary = { images_per_model: images, models: [] };
  const sent = [];
  for (const m of models) {
    const started = Date.now();
    await keysReady(page, m.name);
    const keygenText = await page.$eval("#t-keygen", (el) => el.textContent);
    const want = plaintextClasses(m.name, images);
    const pics = testImages(m.data, images);
    const timings = [];
    let agree = 0;
    for (let i = 0; i < images; i++) {
      await paint(page, pics[i]);
      const got = await classify(page);
      assert.equal(got.state, "done", `${m.name} image ${i}: ${got.message}`);
      sent.push(pics[i]);
      timings.push(got.timings);
      if (got.cls === want[i]) agree++;
      else failures.push(`${m.name} test image ${i}: page shows class ${got.cls}, plaintext model ${want[i]}`);
    }
    summary.models.push({
      model: m.name,
      agree: `${agree}/${images}`,
      keygen: keygenText,
      seconds: (Date.now() - started) / 1e3,
      encrypt_ms_median: median(timings.map((t) => t.encryptMs)),
      decrypt_ms_median: median(timings.map((t) => t.decryptMs)),
      round_trip_ms_median: median(timings.map((t) => t.roundMs)),
    });
  }

  // a picture file of another size takes the same path as the CLI's PNG reader
  {
    const m = models[0];
    await keysReady(page, m.name);
    const pic = testImages(m.data, 1)[0];
    const png = await page.evaluate(async (px) => {
      const c = new OffscreenCanvas(56, 56);
      const ctx = c.getContext("2d");
      px.forEach((v, i) => {
        ctx.fillStyle = `rgb(${v},${v},${v})`;
        ctx.fillRect((i % 28) * 2, Math.floor(i / 28) * 2, 2, 2);
      });
      return Array.from(new Uint8Array(await (await c.convertToBlob({ type: "image/png" })).arrayBuffer()));
    }, Array.from(pic));
    await page.setInputFiles("#file", { name: "digit.png", mimeType: "image/png", buffer: Buffer.from(png) });
    await page.waitForFunction(() => document.getElementById("pad").width === 56);
    const got = await classify(page);
    assert.equal(got.state, "done", got.message);
    assert.equal(got.cls, plaintextClasses(m.name, 1)[0], "a dropped PNG is classified as the plaintext model does");
    // the costs shown: 660 kB of ciphertexts up (4 for ciphernet), 64 kB of reply down
    assert.match(await page.$eval("#b-io", (el) => el.textContent), /^\d+ kB \/ \d+ kB$/);
    assert.match(await page.$eval("#t-encrypt", (el) => el.textContent), /^\d+ ms$/);
    sent.push(pic);
  }
  await page.screenshot({ path: path.join(out, "page.png"), fullPage: true });

  // ----- what left the page -----
  const secrets = {};
  for (const m of models) secrets[m.name] = await storedSecret(page, m.name);
  const posts = requests.filter((r) => r.method === "POST");
  for (const r of requests) assert.ok(r.url.startsWith(origin + "/"), `request to another origin: ${r.url}`);
  for (const r of posts) {
    assert.match(new URL(r.url).pathname, /^\/v1\/(keys|models\/[^/]+\/infer)$/, `unexpected POST ${r.url}`);
    assert.equal(r.headers["content-type"], "application/octet-stream");
    assert.ok(r.body && r.body.length > 0, `POST ${r.url} has a body`);
  }
  const keyPosts = posts.filter((r) => r.url.endsWith("/v1/keys"));
  assert.equal(keyPosts.length, models.length, "evaluation keys are sent once per model");
  for (const [model, sk] of Object.entries(secrets)) {
    assert.ok(sk.length > 1000, `${model}: the secret key is stored`);
    for (const at of [0, sk.length >> 2, sk.length >> 1, sk.length - 64]) {
      const window = Buffer.from(sk.slice(at, at + 64));
      for (const r of posts) assert.equal(r.body.indexOf(window), -1, `${model}'s secret key went out in ${r.url}`);
    }
  }
  for (const px of sent) {
    const text = Buffer.from(Array.from(px.subarray(150, 190)).join(","));
    for (const r of posts) {
      assert.equal(r.body.indexOf(Buffer.from(px)), -1, `an image went out in the clear in ${r.url}`);
      assert.equal(r.body.indexOf(text), -1, `an image went out as text in ${r.url}`);
    }
  }
  summary.requests = { posts: posts.length, keys_uploaded: keyPosts.map((r) => r.body.length) };

  // ----- a reload reuses the stored keys -----
  const before = requests.length;
  await page.reload();
  await keysReady(page, models[0].name);
  assert.equal(await page.$eval("#t-keygen", (el) => el.textContent), "stored keys reused");
  await paint(page, testImages(models[0].data, 1)[0]);
  let got = await classify(page);
  assert.equal(got.state, "done", got.message);
  assert.equal(
    requests.slice(before).filter((r) => r.url.endsWith("/v1/keys")).length,
    0,
    "no second upload of the evaluation keys after a reload",
  );

  // ----- bad input -----
  await page.click("#clear");
  got = await classify(page);
  assert.equal(got.state, "error");
  assert.match(got.message, /empty/);
  await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
  await page.waitForFunction(() => !document.getElementById("message").hidden);
  assert.match(await page.$eval("#message", (el) => el.textContent), /not a picture/);

  // a server that lost the keys (restarted with an empty store): the page sends them again
  await stopServer(server);
  server = await startServer(path.join(scratch, "data-2"), new URL(origin).port);
  await paint(page, testImages(models[0].data, 1)[0]);
  const keysBefore = requests.filter((r) => r.url.endsWith("/v1/keys")).length;
  got = await classify(page);
  assert.equal(got.state, "done", got.message);
  assert.match(got.message, /no longer had/);
  assert.equal(requests.filter((r) => r.url.endsWith("/v1/keys")).length, keysBefore + 1);

  // a server that is down
  await stopServer(server);
  server = null;
  got = await classify(page);
  assert.equal(got.state, "error");
  assert.match(got.message, /Cannot reach the server/);
  await page.screenshot({ path: path.join(out, "server-down.png"), fullPage: true });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log(JSON.stringify(summary));
} finally {
  await browser.close();
  if (server) await stopServer(server);
  fs.rmSync(scratch, { recursive: true, force: true });
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(`web e2e: ok (${images} images of each of ${models.length} models, reload, bad input, evicted keys, server down)`);
