//! The unseen browser client: the client core ([`unseen_client_core`]) with JavaScript
//! bindings, built for `wasm32-unknown-unknown` by `scripts/build-web.sh`.
//!
//! The page's Web Worker calls [`generate_keys`] with a served model's spec, stores the
//! client's spec and secret key in IndexedDB (they never leave the page), uploads the
//! evaluation keys once, then encrypts pictures and decrypts replies with a [`Client`].
//! Randomness: ChaCha20 seeded from `crypto.getRandomValues` for each key set and ciphertext.

use unseen_client_core::{picture, CnnCore};
use unseen_wire::cnn::ModelSpec;
use wasm_bindgen::prelude::*;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Makes a client for a served model from its spec (the JSON of `GET /v1/models/{name}`):
/// a secret key, the relinearisation key and the Galois keys the model needs.
/// `progress(done, total)` is called after each Galois key.
#[wasm_bindgen(js_name = generateKeys)]
pub fn generate_keys(
    model_spec_json: &str,
    progress: &js_sys::Function,
) -> Result<Client, JsError> {
    let spec: ModelSpec = serde_json::from_str(model_spec_json)
        .map_err(|e| js_err(format!("not a model spec: {e}")))?;
    let mut report = |done: usize, total: usize| {
        // a failing progress callback must not stop the keys being made
        let _ = progress.call2(
            &JsValue::NULL,
            &JsValue::from(done as u32),
            &JsValue::from(total as u32),
        );
    };
    let mut rng = unseen_client_core::seeded_csprng();
    let made = unseen_client_core::generate(&spec, &mut rng, &mut report).map_err(js_err)?;
    Ok(Client {
        core: made.client,
        eval_keys: Some(made.eval_keys),
    })
}

/// A client: its spec and secret key, and the evaluation keys until they are taken.
#[wasm_bindgen]
pub struct Client {
    core: CnnCore,
    eval_keys: Option<Vec<u8>>,
}

#[wasm_bindgen]
impl Client {
    /// A client from the stored spec (JSON bytes) and secret key.
    pub fn restore(client_json: &[u8], secret_key: &[u8]) -> Result<Client, JsError> {
        Ok(Client {
            core: CnnCore::restore(client_json, secret_key).map_err(js_err)?,
            eval_keys: None,
        })
    }

    /// The client spec (JSON bytes), to store beside the secret key.
    #[wasm_bindgen(js_name = clientJson)]
    pub fn client_json(&self) -> Vec<u8> {
        self.core.spec.to_json()
    }

    /// The secret key's bytes, to store in the page's IndexedDB; never sent anywhere.
    #[wasm_bindgen(js_name = secretKey)]
    pub fn secret_key(&self) -> js_sys::Uint8Array {
        // copied straight into JavaScript; the copy in wasm memory is wiped when dropped
        js_sys::Uint8Array::from(&self.core.secret_key_bytes()[..])
    }

    /// The evaluation keys, once (after [`generate_keys`]); `undefined` afterwards.
    #[wasm_bindgen(js_name = takeEvalKeys)]
    pub fn take_eval_keys(&mut self) -> Option<Vec<u8>> {
        self.eval_keys.take()
    }

    /// The key id: the SHA-256 of the evaluation keys, as the server computes it.
    #[wasm_bindgen(getter, js_name = keyId)]
    pub fn key_id(&self) -> String {
        self.core.spec.key_id.clone()
    }

    /// The model the keys were made for.
    #[wasm_bindgen(getter)]
    pub fn model(&self) -> String {
        self.core.spec.model.clone()
    }

    /// Rows and columns of the model's gray image input (an error for other inputs).
    #[wasm_bindgen(js_name = imageSize)]
    pub fn image_size(&self) -> Result<Vec<u32>, JsError> {
        let (rows, cols) = self.core.spec.gray_image().map_err(js_err)?;
        Ok(vec![rows as u32, cols as u32])
    }

    /// The model's gray input (`rows x cols`, 0..=255) of a `width x height` RGBA picture
    /// (a canvas's `ImageData`), as the CLI reads a PNG file.
    #[wasm_bindgen(js_name = grayPixels)]
    pub fn gray_pixels(&self, rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>, JsError> {
        let (rows, cols) = self.core.spec.gray_image().map_err(js_err)?;
        picture::gray_pixels(rgba, 4, width as usize, height as usize, rows, cols).map_err(js_err)
    }

    /// Encrypts the model's input pixels (from [`Client::gray_pixels`]): the request body of
    /// `POST /v1/models/{name}/infer`.
    #[wasm_bindgen(js_name = encryptPixels)]
    pub fn encrypt_pixels(&self, pixels: &[u8]) -> Result<Vec<u8>, JsError> {
        self.core.encrypt_image(pixels).map_err(js_err)
    }

    /// Decrypts a reply: JSON `{"class", "probabilities", "logits"}`.
    pub fn decrypt(&self, reply: &[u8]) -> Result<String, JsError> {
        let logits = self.core.decrypt_logits(reply).map_err(js_err)?;
        serde_json::to_string(&unseen_client_core::classify(logits)).map_err(js_err)
    }
}
