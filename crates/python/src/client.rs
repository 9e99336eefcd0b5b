//! The encrypted-inference client for Python: the same key folders, requests and decryption as
//! the CLI (`unseen-client`), without the GIL while it encrypts, waits and decrypts.

use std::path::PathBuf;

use pyo3::exceptions::{PyConnectionError, PyValueError};
use pyo3::prelude::*;
use unseen_client::cnn::{self, CnnClient, RemoteBatch, RemoteInference};
use unseen_client::salary::{self, Server};

/// A client error as a Python exception: `unseen.ServerError(code, message)` for the server's
/// refusals, `ConnectionError` when it cannot be reached, `ValueError` for the rest.
pub(crate) fn client_err(py: Python<'_>, e: unseen_client::Error) -> PyErr {
    match e {
        unseen_client::Error::Server { code, message } => {
            match py
                .import("unseen.errors")
                .and_then(|m| m.getattr("ServerError"))
                .and_then(|cls| cls.call1((code, message)))
            {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            }
        }
        e @ unseen_client::Error::Connection { .. } => PyConnectionError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// Classes, probabilities and logits of each input.
type Results = (Vec<usize>, Vec<Vec<f64>>, Vec<Vec<f64>>);

/// A client of one model on one server, with its key folder.
#[pyclass(module = "unseen._native")]
pub struct Client {
    base: String,
    model: String,
    dir: PathBuf,
    cnn: Option<CnnClient>,
}

impl Client {
    /// The CNN key folder, made from the server's spec the first time.
    fn cnn(&mut self) -> Result<&CnnClient, unseen_client::Error> {
        if self.cnn.is_none() {
            if !self.dir.join("client.json").exists() {
                let spec = cnn::fetch_spec(&self.base, &self.model)?;
                CnnClient::keygen_for(&spec, &self.dir)?;
            }
            let client = CnnClient::load(&self.dir)?;
            if client.spec.model != self.model {
                return Err(unseen_client::Error::Input(format!(
                    "the keys in {} are for model '{}', not '{}'",
                    self.dir.display(),
                    client.spec.model,
                    self.model
                )));
            }
            self.cnn = Some(client);
        }
        Ok(self.cnn.as_ref().expect("loaded above"))
    }

    fn run(
        &mut self,
        count: usize,
        single: impl Fn(
            &str,
            &std::path::Path,
            &CnnClient,
            usize,
        ) -> Result<RemoteInference, unseen_client::Error>,
        batch: impl Fn(
            &str,
            &std::path::Path,
            &CnnClient,
            std::ops::Range<usize>,
        ) -> Result<RemoteBatch, unseen_client::Error>,
    ) -> Result<Results, unseen_client::Error> {
        let (base, dir) = (self.base.clone(), self.dir.clone());
        let client = self.cnn()?;
        let mut out: Results = (Vec::new(), Vec::new(), Vec::new());
        let mut push = |c: cnn::Classification| {
            out.0.push(c.class);
            out.1.push(c.probabilities);
            out.2.push(c.logits);
        };
        if count == 1 {
            push(single(&base, &dir, client, 0)?.result);
        } else {
            // many inputs: one per slot, as many requests as the slots need
            let cap = client.batch_capacity().max(1);
            let mut start = 0;
            while start < count {
                let end = (start + cap).min(count);
                for c in batch(&base, &dir, client, start..end)?.results {
                    push(c);
                }
                start = end;
            }
        }
        Ok(out)
    }
}

#[pymethods]
impl Client {
    /// A client of `model` at `url` (`http(s)://host:port`), keeping its keys in `keys`.
    #[new]
    fn new(url: &str, model: &str, keys: PathBuf) -> PyResult<Self> {
        let base = match url.parse::<Server>() {
            Ok(Server::Http(base)) => base,
            Ok(Server::Legacy(_)) => {
                return Err(PyValueError::new_err(
                    "the server URL must be http(s)://HOST:PORT",
                ))
            }
            Err(e) => return Err(PyValueError::new_err(e)),
        };
        Ok(Self {
            base,
            model: model.to_string(),
            dir: keys,
            cnn: None,
        })
    }

    /// The server's base URL.
    #[getter]
    fn url(&self) -> &str {
        &self.base
    }

    /// The model's name.
    #[getter]
    fn model(&self) -> &str {
        &self.model
    }

    /// The key folder.
    #[getter]
    fn keys(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Makes (or loads) the key folder; returns the key id.
    fn ensure_keys(&mut self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.cnn().map(|c| c.spec.key_id.clone()))
            .map_err(|e| client_err(py, e))
    }

    /// The model's input shape, from its spec: `(channels, rows, columns)` or `(features,)`.
    fn input_shape(&mut self, py: Python<'_>) -> PyResult<Vec<usize>> {
        py.detach(|| {
            self.cnn().map(|c| match c.spec.input {
                unseen_model::Shape::Image(ch, r, col) => vec![ch, r, col],
                s => vec![s.len()],
            })
        })
        .map_err(|e| client_err(py, e))
    }

    /// Classes the model names, index = class.
    fn class_names(&mut self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.cnn().map(|c| c.spec.classes.clone()))
            .map_err(|e| client_err(py, e))
    }

    /// Classifies `count` images given as their pixels (0-255) back to back.
    fn predict_images(
        &mut self,
        py: Python<'_>,
        pixels: numpy::PyReadonlyArray1<'_, u8>,
        count: usize,
    ) -> PyResult<Results> {
        // one copy out of the array (it cannot cross into the GIL-free part)
        let pixels = pixels.as_array().to_vec();
        if count == 0 || pixels.len() % count != 0 {
            return Err(PyValueError::new_err(format!(
                "{} pixels do not make {count} images",
                pixels.len()
            )));
        }
        let per = pixels.len() / count;
        py.detach(|| {
            self.run(
                count,
                |base, dir, client, i| {
                    cnn::predict_image(base, dir, client, &pixels[i * per..(i + 1) * per])
                },
                |base, dir, client, range| {
                    let images: Vec<&[u8]> =
                        range.map(|i| &pixels[i * per..(i + 1) * per]).collect();
                    cnn::predict_batch(base, dir, client, &images)
                },
            )
        })
        .map_err(|e| client_err(py, e))
    }

    /// Classifies `count` feature vectors given back to back (raw values; the model's
    /// normalisation is applied here).
    fn predict_features(
        &mut self,
        py: Python<'_>,
        values: numpy::PyReadonlyArray1<'_, f64>,
        count: usize,
    ) -> PyResult<Results> {
        let values = values.as_array().to_vec();
        if count == 0 || values.len() % count != 0 {
            return Err(PyValueError::new_err(format!(
                "{} values do not make {count} feature vectors",
                values.len()
            )));
        }
        let per = values.len() / count;
        py.detach(|| {
            self.run(
                count,
                |base, dir, client, i| {
                    cnn::predict_features(base, dir, client, &values[i * per..(i + 1) * per])
                },
                |base, dir, client, range| {
                    let inputs: Vec<Vec<f64>> = range
                        .map(|i| values[i * per..(i + 1) * per].to_vec())
                        .collect();
                    cnn::predict_batch_features(base, dir, client, &inputs)
                },
            )
        })
        .map_err(|e| client_err(py, e))
    }

    /// An encrypted prediction of the linear (Paillier) model for `features`, with the key file
    /// `paillier.json` of the key folder (made, 2048 bits, the first time).
    fn predict_linear(&mut self, py: Python<'_>, features: Vec<f64>) -> PyResult<f64> {
        let (base, model, dir) = (self.base.clone(), self.model.clone(), self.dir.clone());
        py.detach(move || {
            let path = dir.join("paillier.json");
            let sk = if path.exists() {
                unseen_client::keyfile::load_private(&path)?
            } else {
                std::fs::create_dir_all(&dir).map_err(|e| unseen_client::Error::KeyFile {
                    path: dir.display().to_string(),
                    message: e.to_string(),
                })?;
                let sk = unseen_paillier::PrivateKey::generate(unseen_paillier::DEFAULT_KEY_BITS)?;
                unseen_client::keyfile::save(
                    &path,
                    &sk,
                    unseen_client::keyfile::KeyFormat::KeysJson,
                )?;
                sk
            };
            let xs: Vec<unseen_paillier::Scalar> = features
                .iter()
                .map(|x| unseen_paillier::Scalar::Float(*x))
                .collect();
            let p = salary::predict(&Server::Http(base), &model, &sk, &xs)?;
            Ok(p.value.to_f64())
        })
        .map_err(|e| client_err(py, e))
    }

    fn __repr__(&self) -> String {
        format!("<unseen Client of '{}' at {}>", self.model, self.base)
    }
}
