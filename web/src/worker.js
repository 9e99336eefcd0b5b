// The page's cryptography, off the main thread: keys are made here (unseen's client core,
// compiled to WebAssembly), kept in this origin's IndexedDB, and used here to encrypt inputs and
// decrypt replies. The secret key never leaves this worker and IndexedDB; the page receives
// only evaluation keys, ciphertexts and decrypted results.
import init, { generateKeys, Client } from "./pkg/unseen_wasm.js";

const ready = init();
const clients = new Map(); // model name -> Client

const DB = "unseen";
const STORE = "keys";

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error}`));
  });
}

async function dbCall(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error || "aborted"}`));
    });
  } finally {
    db.close();
  }
}

const load = (model) => dbCall("readonly", (s) => s.get(model));
const save = (model, record) => dbCall("readwrite", (s) => s.put(record, model));
const remove = (model) => dbCall("readwrite", (s) => s.delete(model));

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function client(model) {
  const c = clients.get(model);
  if (!c) throw new Error(`no keys for ${model}: make them first`);
  return c;
}

const ops = {
  // Keys for `model`: the stored ones if they were made for this exact spec, else new ones.
  async open({ model, spec }, progress) {
    const specHash = await sha256(spec);
    const stored = await load(model);
    if (stored && stored.specHash === specHash) {
      try {
        const c = Client.restore(stored.clientJson, stored.secretKey);
        clients.get(model)?.free();
        clients.set(model, c);
        return { keyId: c.keyId, made: false, registered: stored.registered, evalKeysBytes: stored.evalKeys.length };
      } catch {
        // an unreadable record: make new keys below, which replace it
      }
    }
    const started = performance.now();
    const c = generateKeys(spec, (done, total) => progress({ done, total }));
    const keygenMs = performance.now() - started;
    const evalKeys = c.takeEvalKeys();
    await save(model, {
      model,
      specHash,
      keyId: c.keyId,
      clientJson: c.clientJson(),
      secretKey: c.secretKey(),
      evalKeys,
      registered: false,
      made: new Date().toISOString(),
    });
    clients.get(model)?.free();
    clients.set(model, c);
    return { keyId: c.keyId, made: true, registered: false, keygenMs, evalKeysBytes: evalKeys.length };
  },
  // The evaluation keys, for upload (a copy: the stored one stays).
  async evalKeys({ model }) {
    const stored = await load(model);
    if (!stored) throw new Error(`no keys for ${model}`);
    return { evalKeys: stored.evalKeys };
  },
  async registered({ model, registered }) {
    const stored = await load(model);
    if (stored) {
      stored.registered = registered;
      await save(model, stored);
    }
    return {};
  },
  async forget({ model }) {
    clients.get(model)?.free();
    clients.delete(model);
    await remove(model);
    return {};
  },
  // RGBA picture -> the model's gray pixels (as the CLI reads a PNG).
  async gray({ model, rgba, width, height }) {
    return { gray: client(model).grayPixels(rgba, width, height), size: client(model).imageSize() };
  },
  async encrypt({ model, gray }) {
    const started = performance.now();
    const ciphertext = client(model).encryptPixels(gray);
    return { ciphertext, ms: performance.now() - started };
  },
  async decrypt({ model, reply }) {
    const started = performance.now();
    const result = JSON.parse(client(model).decrypt(new Uint8Array(reply)));
    return { result, ms: performance.now() - started };
  },
};

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    await ready;
    const fn = ops[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    const out = await fn(args, (p) => self.postMessage({ id, progress: p }));
    const transfer = [out.ciphertext, out.evalKeys].filter(Boolean).map((a) => a.buffer);
    self.postMessage({ id, ok: out }, transfer);
  } catch (e) {
    self.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
};
