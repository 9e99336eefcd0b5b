//! Encrypted image classification, client side: key folders, encryption of images, key
//! registration and inference over HTTP, decryption of logits.
//!
//! A key folder holds everything the client needs and nothing the server must not see:
//! `secret.key` (mode 0600, never sent), `eval.keys` (the evaluation keys, sent once) and
//! `client.json` (parameters, the input layout of the circuit, the class names and the key id).
//! The key id is the SHA-256 of `eval.keys`, as the server computes it, so a client can ask for
//! an inference first and register its keys only if the server does not have them.

use std::path::Path;
use std::time::{Duration, Instant};

use unseen_circuits::{compile_card, KeyLayout};
use unseen_model::folder::load_model;
use unseen_wire::cnn::{ModelSpec, CNN_KIND};

pub use unseen_client_core::{
    classify, generate, key_id, seeded_csprng, Classification, ClientSpec, CnnCore, Generated,
    CLIENT_FORMAT,
};

use crate::Error;

/// Largest encrypted reply accepted.
const MAX_REPLY: u64 = 16 << 20;
/// Network timeout per request.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A loaded key folder: the client core (spec and secret key) it holds. Encryption and
/// decryption are the core's ([`CnnCore`], reached through `Deref`).
pub struct CnnClient {
    core: CnnCore,
}

impl std::ops::Deref for CnnClient {
    type Target = CnnCore;
    fn deref(&self) -> &CnnCore {
        &self.core
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::KeyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn key_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::KeyFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// What `keygen` made.
#[derive(Debug, Clone)]
pub struct KeygenReport {
    /// Size of `eval.keys`.
    pub eval_keys_bytes: usize,
    /// Galois keys in it.
    pub rotation_keys: usize,
    /// Time to make the keys.
    pub elapsed: Duration,
    /// The key id.
    pub key_id: String,
}

impl CnnClient {
    /// Makes a key folder for the model in `model_dir` (served as `name`): compiles its circuit,
    /// checks that it fits the preset, and makes exactly the keys it needs.
    pub fn keygen(model_dir: &Path, name: &str, out: &Path) -> Result<KeygenReport, Error> {
        Self::keygen_with(model_dir, name, KeyLayout::default(), out)
    }

    /// [`Self::keygen`] with the digit layout `layout` (what the server's spec asks for:
    /// `unseen serve --key-digits`).
    pub fn keygen_with(
        model_dir: &Path,
        name: &str,
        layout: KeyLayout,
        out: &Path,
    ) -> Result<KeygenReport, Error> {
        let (net, card) = load_model(model_dir).map_err(|e| Error::Input(e.to_string()))?;
        let mut compiled = compile_card(&net, &card)
            .map_err(|e| Error::Input(format!("compiling {}: {e}", model_dir.display())))?;
        compiled.plan.key_layout = layout;
        Self::keygen_for(&ModelSpec::new(name, &card, &compiled), out)
    }

    /// Makes a key folder from a served model's spec (`GET /v1/models/{name}`): `secret.key`
    /// (mode 0600, never sent), `eval.keys` (sent once) and `client.json`.
    pub fn keygen_for(spec: &ModelSpec, out: &Path) -> Result<KeygenReport, Error> {
        let t = Instant::now();
        let mut rng = unseen_client_core::seeded_csprng();
        let made = unseen_client_core::generate(spec, &mut rng, &mut |_, _| {})?;
        std::fs::create_dir_all(out).map_err(io(out))?;
        let sk_path = out.join("secret.key");
        unseen_fs::write_atomic_private(&sk_path, &made.client.secret_key_bytes())
            .map_err(io(&sk_path))?;
        let ek_path = out.join("eval.keys");
        unseen_fs::write_atomic(&ek_path, &made.eval_keys).map_err(io(&ek_path))?;
        let spec_path = out.join("client.json");
        unseen_fs::write_atomic(&spec_path, &made.client.spec.to_json()).map_err(io(&spec_path))?;
        Ok(KeygenReport {
            eval_keys_bytes: made.eval_keys.len(),
            rotation_keys: made.rotation_keys,
            elapsed: t.elapsed(),
            key_id: made.client.spec.key_id.clone(),
        })
    }

    /// Loads a key folder made by [`Self::keygen`].
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let spec_path = dir.join("client.json");
        let text = std::fs::read(&spec_path).map_err(io(&spec_path))?;
        let spec = ClientSpec::from_json(&text).map_err(|e| key_err(&spec_path, e))?;
        let sk_path = dir.join("secret.key");
        let sk_bytes = zeroize::Zeroizing::new(std::fs::read(&sk_path).map_err(io(&sk_path))?);
        let core = CnnCore::from_spec(spec, &sk_bytes).map_err(|e| key_err(&sk_path, e))?;
        if let Some(warning) = unseen_fs::exposed_secret(&sk_path) {
            tracing::warn!("{warning}");
        }
        Ok(Self { core })
    }

    /// The evaluation-key bundle of this folder, checked against the key id in `client.json`.
    pub fn eval_keys(&self, dir: &Path) -> Result<Vec<u8>, Error> {
        let path = dir.join("eval.keys");
        let bundle = std::fs::read(&path).map_err(io(&path))?;
        if key_id(&bundle) != self.spec.key_id {
            return Err(key_err(
                &path,
                "does not match the key id in client.json (was it changed or replaced?)",
            ));
        }
        Ok(bundle)
    }
}

/// What one request through a server cost.
#[derive(Debug, Clone)]
pub struct Costs {
    /// Client time to encrypt.
    pub encrypt: Duration,
    /// Time from sending the request to having the reply (server time included).
    pub round_trip: Duration,
    /// Server time reported by the server.
    pub server_ms: Option<f64>,
    /// Client time to decrypt.
    pub decrypt: Duration,
    /// Request size.
    pub upload_bytes: usize,
    /// Reply size.
    pub download_bytes: usize,
    /// Bytes of evaluation keys registered first (`None`: the server had them).
    pub registered_keys: Option<usize>,
}

/// One encrypted inference through a server, with its costs.
#[derive(Debug, Clone)]
pub struct RemoteInference {
    /// The decrypted result.
    pub result: Classification,
    /// What it cost.
    pub costs: Costs,
}

pub(crate) fn server_error(base: &str, status: u16, body: &[u8]) -> Error {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match (
        json["error"]["code"].as_str(),
        json["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => Error::Server {
            code: code.into(),
            message: message.into(),
        },
        // a proxy in front (HAProxy) answers with its own page when no replica could
        _ if matches!(status, 502..=504) => Error::Server {
            code: format!("http_{status}"),
            message: format!("HTTP {status} from {base}: no server could answer"),
        },
        _ => Error::Connection {
            server: base.into(),
            message: format!("HTTP {status} without an error description"),
        },
    }
}

/// The JSON body of a successful reply of at most `limit` bytes, or the server's error.
fn json_reply(
    base: &str,
    mut response: ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<serde_json::Value, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| conn(format!("reading the reply: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(server_error(base, status, &body));
    }
    serde_json::from_slice(&body).map_err(|_| conn("reply is not JSON".into()))
}

/// The client spec of the model `name` served at `base` (`GET /v1/models/{name}`).
pub fn fetch_spec(base: &str, name: &str) -> Result<ModelSpec, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let response =
        crate::authorized(crate::agent(TIMEOUT)?.get(&format!("{base}/v1/models/{name}")))
            .call()
            .map_err(|e| conn(e.to_string()))?;
    let json = json_reply(base, response, MAX_REPLY)?;
    if json["kind"] != CNN_KIND {
        return Err(Error::Input(format!(
            "model '{name}' is not an encrypted CNN (kind {})",
            json["kind"]
        )));
    }
    serde_json::from_value(json).map_err(|e| conn(format!("not a model spec: {e}")))
}

/// Registers a key bundle (retrying transient failures: the store is content-addressed, so a
/// second upload of the same bundle changes nothing); returns the server's key id.
pub fn register_keys(base: &str, bundle: &[u8]) -> Result<String, Error> {
    with_retries(|| register_keys_once(base, bundle))
}

fn register_keys_once(base: &str, bundle: &[u8]) -> Result<String, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let response = crate::authorized(crate::agent(TIMEOUT)?.post(&format!("{base}/v1/keys")))
        .header("content-type", "application/octet-stream")
        .send(bundle)
        .map_err(|e| conn(e.to_string()))?;
    let json = json_reply(base, response, 1 << 20)?;
    json["key_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| conn("reply has no key_id".into()))
}

/// The encrypted logits and the server time it reported.
type Reply = (Vec<u8>, Option<f64>);

/// Pauses before each retry of a request that did not reach a server able to answer: the
/// connection failed, or a proxy or the server answered 502, 503 or 504. Inference is
/// idempotent (the same ciphertext gives the same logits), so a retry cannot do harm; behind
/// a balancer it reaches another replica.
const RETRY_PAUSES_MS: [u64; 4] = [200, 500, 1000, 2000];

/// Whether an attempt's outcome is worth another try.
fn transient<T>(outcome: &Result<T, Error>) -> bool {
    match outcome {
        Err(Error::Connection { .. }) => true,
        Err(Error::Server { code, .. }) => matches!(
            code.as_str(),
            "http_502"
                | "http_503"
                | "http_504"
                | "shutting_down"
                | "busy"
                | "store_unavailable"
                | "queue_unavailable"
        ),
        _ => false,
    }
}

/// `attempt` once, then again after each of [`RETRY_PAUSES_MS`] while it fails transiently.
pub(crate) fn with_retries<T>(mut attempt: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut outcome = attempt();
    for pause in RETRY_PAUSES_MS {
        if !transient(&outcome) {
            break;
        }
        tracing::debug!("retrying in {pause} ms");
        std::thread::sleep(Duration::from_millis(pause));
        outcome = attempt();
    }
    outcome
}

/// Sends one encrypted image (retrying transient failures); `Ok(None)` when the server does not
/// know the key id.
fn infer(base: &str, model: &str, key_id: &str, request: &[u8]) -> Result<Option<Reply>, Error> {
    with_retries(|| infer_once(base, model, key_id, request))
}

fn infer_once(
    base: &str,
    model: &str,
    key_id: &str,
    request: &[u8],
) -> Result<Option<Reply>, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let mut response =
        crate::authorized(crate::agent(TIMEOUT)?.post(&format!("{base}/v1/models/{model}/infer")))
            .header("content-type", "application/octet-stream")
            .header("unseen-key-id", key_id)
            .send(request)
            .map_err(|e| conn(e.to_string()))?;
    let status = response.status().as_u16();
    let server_ms = response
        .headers()
        .get("unseen-server-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY)
        .read_to_vec()
        .map_err(|e| conn(format!("reading the reply: {e}")))?;
    if status == 404 {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if json["error"]["code"] == "unknown_key" {
            return Ok(None);
        }
    }
    if !(200..300).contains(&status) {
        return Err(server_error(base, status, &body));
    }
    Ok(Some((body, server_ms)))
}

/// Bytes of evaluation keys sent with a request (`None`: the server had them).
type KeysSent = Option<usize>;

/// Sends a request, registering the folder's evaluation keys first if the server does not
/// have them. Returns the reply, the server time and the size of the keys if they were sent.
fn send(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    request: &[u8],
) -> Result<(Vec<u8>, Option<f64>, KeysSent), Error> {
    let mut registered_keys = None;
    let (reply, server_ms) = match infer(base, &client.spec.model, &client.spec.key_id, request)? {
        Some(r) => r,
        None => {
            let bundle = client.eval_keys(dir)?;
            let id = register_keys(base, &bundle)?;
            if id != client.spec.key_id {
                return Err(Error::Server {
                    code: "key_id".into(),
                    message: format!(
                        "the server registered the keys as {id}, their SHA-256 is {}",
                        client.spec.key_id
                    ),
                });
            }
            registered_keys = Some(bundle.len());
            infer(base, &client.spec.model, &id, request)?.ok_or_else(|| Error::Server {
                code: "unknown_key".into(),
                message: "the server forgot the keys it just registered".into(),
            })?
        }
    };
    Ok((reply, server_ms, registered_keys))
}

/// Encrypts, sends (registering the keys if needed) and decrypts, timing each part.
fn round<T>(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    encrypt: impl FnOnce() -> Result<Vec<u8>, unseen_client_core::Error>,
    decrypt: impl FnOnce(&[u8]) -> Result<T, unseen_client_core::Error>,
) -> Result<(T, Costs), Error> {
    let t = Instant::now();
    let request = encrypt()?;
    let encrypt = t.elapsed();
    let t = Instant::now();
    let (reply, server_ms, registered_keys) = send(base, dir, client, &request)?;
    let round_trip = t.elapsed();
    let t = Instant::now();
    let out = decrypt(&reply)?;
    let costs = Costs {
        encrypt,
        round_trip,
        server_ms,
        decrypt: t.elapsed(),
        upload_bytes: request.len(),
        download_bytes: reply.len(),
        registered_keys,
    };
    Ok((out, costs))
}

/// Encrypts `pixels`, has the server at `base` evaluate the folder's model (registering the
/// evaluation keys first if it does not have them) and decrypts the class.
pub fn predict_image(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    pixels: &[u8],
) -> Result<RemoteInference, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_image(pixels),
        |reply| client.decrypt_logits(reply),
    )?;
    Ok(RemoteInference {
        result: classify(logits),
        costs,
    })
}

/// Like [`predict_image`], for a model that takes a feature vector (`x` raw, normalised here).
pub fn predict_features(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    x: &[f64],
) -> Result<RemoteInference, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_input(&client.normalize_features(x)?),
        |reply| client.decrypt_logits(reply),
    )?;
    Ok(RemoteInference {
        result: classify(logits),
        costs,
    })
}

/// Like [`predict_batch`], for a model that takes feature vectors (raw, normalised here).
pub fn predict_batch_features(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    inputs: &[Vec<f64>],
) -> Result<RemoteBatch, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || {
            let normalised = inputs
                .iter()
                .map(|x| client.normalize_features(x))
                .collect::<Result<Vec<_>, _>>()?;
            client.encrypt_batch_inputs(&normalised)
        },
        |reply| client.decrypt_batch(reply, inputs.len()),
    )?;
    Ok(RemoteBatch {
        results: logits.into_iter().map(classify).collect(),
        costs,
    })
}

/// A batch classified through a server, with its costs.
#[derive(Debug, Clone)]
pub struct RemoteBatch {
    /// One result per image.
    pub results: Vec<Classification>,
    /// What it cost.
    pub costs: Costs,
}

/// Encrypts `images` as one batch (one image per slot), has the server classify them all in one
/// evaluation, and decrypts the classes.
pub fn predict_batch(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    images: &[&[u8]],
) -> Result<RemoteBatch, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_batch(images),
        |reply| client.decrypt_batch(reply, images.len()),
    )?;
    Ok(RemoteBatch {
        results: logits.into_iter().map(classify).collect(),
        costs,
    })
}
