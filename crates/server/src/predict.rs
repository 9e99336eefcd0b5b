//! The encrypted linear prediction: `intercept + sum_i w_i * Enc(x_i)`, re-randomised.

use std::sync::Arc;

use axum::http::StatusCode;
use rand_core::OsRng;
use unseen_model::linear::LinearModel;
use unseen_paillier::{EncodedNumber, EncryptedNumber, Scalar};
use unseen_wire::salary::PredictRequest;

use crate::{ApiError, AppState};

/// Exponents python-paillier gives encrypted numbers: from the smallest subnormal double
/// (`floor((-1073 - 53) / 4)`) to the largest (`floor((1024 - 53) / 4)`); integers get 0.
/// Requests outside are refused: nothing but abuse needs them.
pub const PHE_EXPONENTS: std::ops::RangeInclusive<i32> = -282..=242;

/// Looks a model up by name.
pub fn model(state: &AppState, name: &str) -> Result<Arc<LinearModel>, ApiError> {
    state.models.get(name).cloned().ok_or_else(|| {
        if state.cnn_models.contains_key(name) {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_model",
                format!("'{name}' is an encrypted CNN model: use POST /v1/models/{name}/infer"),
            );
        }
        let known: Vec<&str> = state.models.keys().map(String::as_str).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!("no model named '{name}' (models: {})", known.join(", ")),
        )
    })
}

/// Validates the request against the model and the key rules, computes the encrypted
/// prediction and re-randomises it. CPU-bound: call it off the async runtime.
pub fn predict(
    state: &AppState,
    model: &LinearModel,
    request: PredictRequest,
) -> Result<EncryptedNumber, ApiError> {
    let bad = |code: &'static str, msg: String| ApiError::new(StatusCode::BAD_REQUEST, code, msg);
    model
        .check_features(request.values.len())
        .map_err(|e| bad("wrong_feature_count", e.to_string()))?;
    let pk = state
        .keys
        .get_or_insert(
            request.n,
            state.limits.min_key_bits,
            state.limits.max_key_bits,
        )
        .map_err(|e| bad("bad_key", format!("public key refused: {e}")))?;
    let inputs = request
        .values
        .into_iter()
        .enumerate()
        .map(|(i, (c, e))| {
            if !PHE_EXPONENTS.contains(&e) {
                return Err(bad(
                    "exponent_range",
                    format!(
                        "values[{i}]: exponent {e} is outside the range python-paillier produces ({} to {})",
                        PHE_EXPONENTS.start(),
                        PHE_EXPONENTS.end()
                    ),
                ));
            }
            EncryptedNumber::new(pk.clone(), c, e)
                .map_err(|err| bad("bad_ciphertext", format!("values[{i}]: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let weights = model
        .coefficients
        .iter()
        .map(|w| EncodedNumber::encode(&pk, &Scalar::Float(*w), None, None))
        .collect::<Result<Vec<_>, _>>()
        // the error's own text would carry digits of a weight: never pass it on
        .map_err(|_| {
            bad(
                "encoding",
                "the model's weights do not fit this key's range".into(),
            )
        })?;
    // The random factor does not depend on the result: draw it on a second core meanwhile.
    let (result, obfuscator) = rayon::join(
        || EncryptedNumber::weighted_sum(&inputs, &weights, Some(&Scalar::Float(model.intercept))),
        || pk.obfuscator(state.limits.randomness, &mut OsRng),
    );
    // as above: an overflow message would carry digits of the intercept
    let mut result = result.map_err(|_| {
        bad(
            "overflow",
            "the prediction does not fit this key's range at these exponents".into(),
        )
    })?;
    result.rerandomize_with(&obfuscator);
    Ok(result)
}

/// Runs [`predict`] on the blocking pool, bounded by the state's compute semaphore.
pub async fn predict_async(
    state: Arc<AppState>,
    model: Arc<LinearModel>,
    request: PredictRequest,
) -> Result<EncryptedNumber, ApiError> {
    let _permit = crate::compute_slot(&state).await?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || predict(&st, &model, request))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "prediction task failed",
            )
        })?
}
