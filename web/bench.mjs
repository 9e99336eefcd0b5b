// The browser client's costs in Chromium: key generation, encryption and decryption by the
// client core compiled to WebAssembly, timed in the page (main thread, one thread), against a
// live `unseen serve --web` at ORIGIN. Prints one JSON line.
//   node web/bench.mjs ORIGIN MODEL IMAGES      (run by bench/web.sh)
import { chromium } from "playwright-core";

const [origin, model, images = "20"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage();
  await page.goto(origin + "/");
  const out = await page.evaluate(
    async ({ model, n }) => {
      const wasm = await import("/assets/pkg/unseen_wasm.js");
      await wasm.default();
      const spec = await (await fetch(`/v1/models/${model}`)).text();
      let t = performance.now();
      const client = wasm.generateKeys(spec, () => {});
      const keygen = performance.now() - t;
      const keys = client.takeEvalKeys();
      const reg = await fetch("/v1/keys", { method: "POST", body: keys, headers: { "content-type": "application/octet-stream" } });
      if (!reg.ok) throw new Error(`keys: ${reg.status}`);
      const enc = [];
      const dec = [];
      for (let i = 0; i < n; i++) {
        const px = new Uint8Array(784).map((_, j) => (j * 7 + i * 13) % 256);
        t = performance.now();
        const ct = client.encryptPixels(px);
        enc.push(performance.now() - t);
        const r = await fetch(`/v1/models/${model}/infer`, {
          method: "POST",
          body: ct,
          headers: { "content-type": "application/octet-stream", "unseen-key-id": client.keyId },
        });
        if (!r.ok) throw new Error(`infer: ${r.status}`);
        const reply = new Uint8Array(await r.arrayBuffer());
        t = performance.now();
        client.decrypt(reply);
        dec.push(performance.now() - t);
      }
      const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
      return { keygen_ms: keygen, encrypt_ms: median(enc), decrypt_ms: median(dec), eval_keys_bytes: keys.length };
    },
    { model, n: Number(images) },
  );
  const version = browser.version();
  console.log(JSON.stringify({ where: `chromium ${version}`, model, images: Number(images), ...out }));
} finally {
  await browser.close();
}
