//! Paillier for Python: keys, encrypted numbers and encrypted numpy arrays, with phe's
//! semantics (encoding, exponents, overflow) because they are `unseen-paillier`'s. Array work
//! runs without the GIL on rayon's threads.

use std::sync::Arc;

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyTuple};
use rand_core::OsRng;
use rayon::prelude::*;
use unseen_paillier::formats::{self, KeyFile};
use unseen_paillier::{Decoded, EncodedNumber, Integer, Randomness, Scalar};

/// A Paillier failure as a Python exception: `OverflowError` for values out of the encoding
/// range, `ValueError` for the rest.
pub(crate) fn err(e: unseen_paillier::Error) -> PyErr {
    use unseen_paillier::Error as E;
    match e {
        E::EncodeOverflow { .. } | E::DecodeOverflow | E::FloatOverflow => {
            PyOverflowError::new_err(e.to_string())
        }
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn int_to_py<'py>(py: Python<'py>, x: &Integer) -> PyResult<Bound<'py, PyAny>> {
    py.import("builtins")?
        .getattr("int")?
        .call1((x.to_string(),))
}

fn int_from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Integer> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{what} must be an int")));
    }
    let text = obj.str()?;
    text.to_cow()?
        .parse::<Integer>()
        .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// A Python int or float as a plaintext scalar.
fn scalar(obj: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("a bool is not a number to encrypt"));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Scalar::Int(int_from_py(obj, "value")?));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Scalar::Float(obj.extract::<f64>()?));
    }
    // numpy scalars and other numbers
    if let Ok(i) = obj.call_method0("__index__") {
        return Ok(Scalar::Int(int_from_py(&i, "value")?));
    }
    obj.extract::<f64>().map(Scalar::Float).map_err(|_| {
        PyTypeError::new_err(format!(
            "expected an int or a float, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// A list, tuple or numpy array as its shape and plaintext scalars (floats as float64, integers
/// exactly, Python ints of any size from object arrays); `None` for a plain number.
fn array_values(value: &Bound<'_, PyAny>) -> PyResult<Option<(Vec<usize>, Vec<Scalar>)>> {
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        return Ok(None);
    }
    let py = value.py();
    let np = py.import("numpy")?;
    let is_array = value.is_instance(&np.getattr("ndarray")?)?;
    if !is_array && !value.hasattr("__len__")? {
        return Ok(None);
    }
    let arr = np.call_method1("asarray", (value,))?;
    if arr.getattr("ndim")?.extract::<usize>()? == 0 {
        return Ok(None);
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let values = match kind.as_str() {
        "f" => {
            let a = arr.call_method1("astype", ("float64",))?;
            let a = a.extract::<PyReadonlyArrayDyn<'_, f64>>()?;
            a.as_array().iter().map(|v| Scalar::Float(*v)).collect()
        }
        "i" | "u" => {
            // through Python ints: exact for every integer dtype, uint64 included
            let list = arr.call_method0("ravel")?.call_method0("tolist")?;
            list.try_iter()?
                .map(|x| int_from_py(&x?, "value").map(Scalar::Int))
                .collect::<PyResult<Vec<_>>>()?
        }
        "O" => {
            let list = arr.call_method0("ravel")?.call_method0("tolist")?;
            list.try_iter()?
                .map(|x| scalar(&x?))
                .collect::<PyResult<Vec<_>>>()?
        }
        other => {
            return Err(PyTypeError::new_err(format!(
                "cannot encrypt an array of dtype kind '{other}': give ints or floats"
            )))
        }
    };
    Ok(Some((shape, values)))
}

fn negated(s: &Scalar) -> Scalar {
    match s {
        Scalar::Int(i) => Scalar::Int(Integer::from(-i)),
        Scalar::Float(f) => Scalar::Float(-f),
    }
}

fn decoded_to_py<'py>(py: Python<'py>, d: Decoded) -> PyResult<Bound<'py, PyAny>> {
    match d {
        Decoded::Int(i) => int_to_py(py, &i),
        Decoded::Float(f) => Ok(PyFloat::new(py, f).into_any()),
    }
}

/// A Paillier public key (phe's `PaillierPublicKey`).
#[pyclass(frozen, module = "unseen._native")]
pub struct PublicKey {
    pub(crate) inner: Arc<unseen_paillier::PublicKey>,
}

#[pymethods]
impl PublicKey {
    /// The public key with modulus `n`.
    #[new]
    fn new(n: &Bound<'_, PyAny>) -> PyResult<Self> {
        let n = int_from_py(n, "n")?;
        Ok(Self {
            inner: Arc::new(unseen_paillier::PublicKey::from_n(n, 16).map_err(err)?),
        })
    }

    /// The modulus.
    #[getter]
    fn n<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.inner.n())
    }

    /// Bits of the modulus.
    #[getter]
    fn bits(&self) -> u32 {
        self.inner.bits()
    }

    /// Encrypts an int or a float (phe's `encrypt(value, precision=None)`) to an
    /// `EncryptedNumber`, or every element of a list or numpy array (on all cores, without the
    /// GIL) to an `EncryptedArray` of its shape.
    #[pyo3(signature = (value, precision=None))]
    fn encrypt(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        precision: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        if let Some((shape, xs)) = array_values(value)? {
            return Ok(self
                .encrypt_all(py, xs, shape)?
                .into_pyobject(py)?
                .into_any()
                .unbind());
        }
        Ok(self
            .encrypt_one(value, precision)?
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    /// Encrypts every element of a float64 array, on all cores, without the GIL.
    fn encrypt_array(
        &self,
        py: Python<'_>,
        values: PyReadonlyArrayDyn<'_, f64>,
    ) -> PyResult<EncryptedArray> {
        let shape = values.shape().to_vec();
        let xs: Vec<Scalar> = values
            .as_array()
            .iter()
            .map(|v| Scalar::Float(*v))
            .collect();
        self.encrypt_all(py, xs, shape)
    }

    /// phe's public JWK (`{"kty": "DAJ", "alg": "PAI-GN1", "n": ...}`) as JSON text.
    #[pyo3(signature = (kid=""))]
    fn to_jwk(&self, kid: &str) -> String {
        formats::public_jwk(&self.inner, kid).to_string()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PublicKey>()
            .is_ok_and(|o| o.get().inner.n() == self.inner.n())
    }

    fn __hash__(&self) -> u64 {
        self.inner.n().to_u64_wrapping()
    }

    fn __repr__(&self) -> String {
        format!("<unseen PublicKey, {} bits>", self.inner.bits())
    }
}

/// Encrypts every scalar with `f` on rayon's threads, without the GIL.
fn encrypt_par(
    py: Python<'_>,
    xs: Vec<Scalar>,
    shape: Vec<usize>,
    pk: &Arc<unseen_paillier::PublicKey>,
    f: impl Fn(&Scalar) -> unseen_paillier::Result<unseen_paillier::EncryptedNumber> + Send + Sync,
) -> PyResult<EncryptedArray> {
    let items = py
        .detach(|| xs.par_iter().map(&f).collect::<Result<Vec<_>, _>>())
        .map_err(err)?;
    Ok(EncryptedArray {
        items,
        shape,
        pk: pk.clone(),
    })
}

impl PublicKey {
    fn encrypt_one(
        &self,
        value: &Bound<'_, PyAny>,
        precision: Option<f64>,
    ) -> PyResult<EncryptedNumber> {
        let s = scalar(value)?;
        let encoded = EncodedNumber::encode(&self.inner, &s, precision, None).map_err(err)?;
        let x = unseen_paillier::EncryptedNumber::encrypt_encoded(
            &self.inner,
            &encoded,
            Randomness::FixedBase,
            &mut OsRng,
        );
        Ok(EncryptedNumber { inner: x })
    }

    fn encrypt_all(
        &self,
        py: Python<'_>,
        xs: Vec<Scalar>,
        shape: Vec<usize>,
    ) -> PyResult<EncryptedArray> {
        let pk = &self.inner;
        encrypt_par(py, xs, shape, pk, |x| {
            unseen_paillier::EncryptedNumber::encrypt(pk, x, Randomness::FixedBase, &mut OsRng)
        })
    }
}

/// A Paillier private key (phe's `PaillierPrivateKey`).
#[pyclass(frozen, module = "unseen._native")]
pub struct PrivateKey {
    pub(crate) inner: Arc<unseen_paillier::PrivateKey>,
}

#[pymethods]
impl PrivateKey {
    /// The private key of `public_key` with primes `p` and `q`.
    #[new]
    fn new(public_key: &PublicKey, p: &Bound<'_, PyAny>, q: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (p, q) = (int_from_py(p, "p")?, int_from_py(q, "q")?);
        let sk = unseen_paillier::PrivateKey::with_public(public_key.inner.clone(), p, q)
            .map_err(err)?;
        Ok(Self {
            inner: Arc::new(sk),
        })
    }

    /// The public half.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key().clone(),
        }
    }

    /// The first prime.
    #[getter]
    fn p<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.inner.p())
    }

    /// The second prime.
    #[getter]
    fn q<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.inner.q())
    }

    /// Decrypts an `EncryptedNumber` (to an int when its exponent is not negative, else a
    /// float, like phe) or an `EncryptedArray` (to a float64 array of its shape, on all cores).
    fn decrypt<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(n) = x.cast::<EncryptedNumber>() {
            let d = self.inner.decrypt(&n.get().inner).map_err(err)?;
            return decoded_to_py(py, d);
        }
        if let Ok(a) = x.cast::<EncryptedArray>() {
            let a = a.get();
            let sk = self.inner.clone();
            let values = py
                .detach(|| {
                    a.items
                        .par_iter()
                        .map(|c| sk.decrypt(c).map(|d| d.to_f64()))
                        .collect::<Result<Vec<f64>, _>>()
                })
                .map_err(err)?;
            let array = ArrayD::from_shape_vec(IxDyn(&a.shape), values)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            return Ok(array.into_pyarray(py).into_any());
        }
        Err(PyTypeError::new_err(
            "decrypt takes an EncryptedNumber or an EncryptedArray",
        ))
    }

    /// Encrypts with the private key (CRT: faster than with the public key, the same
    /// ciphertexts): a number to an `EncryptedNumber`, a list or array to an `EncryptedArray`.
    #[pyo3(signature = (value, precision=None))]
    fn encrypt(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        precision: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let sk = self.inner.clone();
        if let Some((shape, xs)) = array_values(value)? {
            let a = encrypt_par(py, xs, shape, sk.public_key(), |x| {
                unseen_paillier::EncryptedNumber::encrypt_with_private_key(
                    &sk,
                    x,
                    Randomness::FixedBase,
                    &mut OsRng,
                )
            })?;
            return Ok(a.into_pyobject(py)?.into_any().unbind());
        }
        let s = scalar(value)?;
        let encoded = EncodedNumber::encode(sk.public_key(), &s, precision, None).map_err(err)?;
        let x = unseen_paillier::EncryptedNumber::encrypt_encoded_with_private_key(
            &sk,
            &encoded,
            Randomness::FixedBase,
            &mut OsRng,
        );
        Ok(EncryptedNumber { inner: x }
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    /// The `keys.json` layout (`{"public_key": {"n"}, "private_key": {"p", "q"}}`).
    fn to_keys_json(&self) -> String {
        formats::write_keys_json(&self.inner)
    }

    /// phe's private JWK as JSON text.
    #[pyo3(signature = (kid=""))]
    fn to_jwk(&self, kid: &str) -> String {
        formats::private_jwk(&self.inner, kid)
    }

    fn __repr__(&self) -> String {
        format!(
            "<unseen PrivateKey, {} bits>",
            self.inner.public_key().bits()
        )
    }
}

/// One encrypted number (phe's `EncryptedNumber`): a ciphertext and its exponent.
#[pyclass(frozen, module = "unseen._native")]
pub struct EncryptedNumber {
    pub(crate) inner: unseen_paillier::EncryptedNumber,
}

impl EncryptedNumber {
    fn wrap(r: unseen_paillier::Result<unseen_paillier::EncryptedNumber>) -> PyResult<Self> {
        r.map(|inner| Self { inner }).map_err(err)
    }

    fn plus(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(o) = other.cast::<EncryptedNumber>() {
            return Self::wrap(self.inner.add(&o.get().inner));
        }
        Self::wrap(self.inner.add_scalar(&scalar(other)?))
    }
}

#[pymethods]
impl EncryptedNumber {
    /// An encrypted number from its parts (phe's `EncryptedNumber(public_key, ciphertext,
    /// exponent)`).
    #[new]
    #[pyo3(signature = (public_key, ciphertext, exponent=0))]
    fn new(public_key: &PublicKey, ciphertext: &Bound<'_, PyAny>, exponent: i32) -> PyResult<Self> {
        let c = int_from_py(ciphertext, "ciphertext")?;
        Self::wrap(unseen_paillier::EncryptedNumber::new(
            public_key.inner.clone(),
            c,
            exponent,
        ))
    }

    /// The key it is encrypted under.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key().clone(),
        }
    }

    /// The raw ciphertext (an int modulo n^2).
    #[getter]
    fn ciphertext<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.inner.ciphertext())
    }

    /// The base-16 exponent of the encoding.
    #[getter]
    fn exponent(&self) -> i32 {
        self.inner.exponent()
    }

    /// A fresh random factor: the same value, unlinkable to this ciphertext.
    fn rerandomize(&self) -> Self {
        let mut x = self.inner.clone();
        x.rerandomize(Randomness::FixedBase, &mut OsRng);
        Self { inner: x }
    }

    /// phe's encrypted-number JSON (`{"v": "<ciphertext>", "e": exponent}`).
    fn to_json(&self) -> String {
        formats::write_encrypted_number(&self.inner)
    }

    fn __add__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.plus(other)
    }

    fn __radd__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.plus(other)
    }

    fn __sub__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(o) = other.cast::<EncryptedNumber>() {
            return Self::wrap(self.inner.sub(&o.get().inner));
        }
        Self::wrap(self.inner.add_scalar(&negated(&scalar(other)?)))
    }

    fn __rsub__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        let neg = self.inner.neg().map_err(err)?;
        Self::wrap(neg.add_scalar(&scalar(other)?))
    }

    fn __mul__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        if other.cast::<EncryptedNumber>().is_ok() {
            return Err(PyTypeError::new_err(
                "Paillier cannot multiply two encrypted numbers; multiply by a plaintext number",
            ));
        }
        Self::wrap(self.inner.mul_scalar(&scalar(other)?))
    }

    fn __rmul__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.__mul__(other)
    }

    fn __truediv__(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        let d = scalar(other)?;
        let f = match d {
            Scalar::Int(i) => i.to_f64(),
            Scalar::Float(f) => f,
        };
        if f == 0.0 {
            return Err(PyValueError::new_err("division by zero"));
        }
        Self::wrap(self.inner.mul_scalar(&Scalar::Float(1.0 / f)))
    }

    fn __neg__(&self) -> PyResult<Self> {
        Self::wrap(self.inner.neg())
    }

    fn __repr__(&self) -> String {
        format!(
            "<unseen EncryptedNumber, exponent {}>",
            self.inner.exponent()
        )
    }
}

/// An array of encrypted numbers under one key, with numpy's shape: element-wise `+`, `-`,
/// `*` by plaintext arrays or scalars, `dot` with a plaintext vector, `sum`; all on every core.
#[pyclass(frozen, module = "unseen._native")]
pub struct EncryptedArray {
    items: Vec<unseen_paillier::EncryptedNumber>,
    shape: Vec<usize>,
    pk: Arc<unseen_paillier::PublicKey>,
}

/// The right operand of an element-wise operation.
enum Operand {
    Encrypted(Vec<unseen_paillier::EncryptedNumber>),
    Plain(Vec<Scalar>),
    Scalar(Scalar),
}

impl EncryptedArray {
    fn operand(&self, other: &Bound<'_, PyAny>) -> PyResult<Operand> {
        if let Ok(o) = other.cast::<EncryptedArray>() {
            let o = o.get();
            if o.shape != self.shape {
                return Err(PyValueError::new_err(format!(
                    "shapes {:?} and {:?} differ",
                    self.shape, o.shape
                )));
            }
            return Ok(Operand::Encrypted(o.items.clone()));
        }
        if let Some(op) = self.plain(other, Scalar::Float)? {
            return Ok(op);
        }
        if let Some(op) = self.plain(other, |v: i64| Scalar::Int(Integer::from(v)))? {
            return Ok(op);
        }
        Ok(Operand::Scalar(scalar(other)?))
    }

    /// A numpy array of `T` with this array's shape as plaintext scalars (`None`: not such an
    /// array).
    fn plain<T: numpy::Element + Copy>(
        &self,
        other: &Bound<'_, PyAny>,
        to: impl Fn(T) -> Scalar,
    ) -> PyResult<Option<Operand>> {
        let Ok(a) = other.extract::<PyReadonlyArrayDyn<'_, T>>() else {
            return Ok(None);
        };
        if a.shape() != self.shape.as_slice() {
            return Err(PyValueError::new_err(format!(
                "shapes {:?} and {:?} differ",
                self.shape,
                a.shape()
            )));
        }
        Ok(Some(Operand::Plain(
            a.as_array().iter().map(|v| to(*v)).collect(),
        )))
    }

    fn map(
        &self,
        py: Python<'_>,
        f: impl Fn(
                usize,
                &unseen_paillier::EncryptedNumber,
            ) -> unseen_paillier::Result<unseen_paillier::EncryptedNumber>
            + Send
            + Sync,
    ) -> PyResult<Self> {
        let items = py
            .detach(|| {
                self.items
                    .par_iter()
                    .enumerate()
                    .map(|(i, x)| f(i, x))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(err)?;
        Ok(Self {
            items,
            shape: self.shape.clone(),
            pk: self.pk.clone(),
        })
    }

    fn add_op(&self, py: Python<'_>, op: Operand, negate: bool) -> PyResult<Self> {
        match op {
            Operand::Encrypted(o) => {
                self.map(py, |i, x| if negate { x.sub(&o[i]) } else { x.add(&o[i]) })
            }
            Operand::Plain(o) => self.map(py, |i, x| {
                x.add_scalar(&if negate { negated(&o[i]) } else { o[i].clone() })
            }),
            Operand::Scalar(s) => {
                let s = if negate { negated(&s) } else { s };
                self.map(py, |_, x| x.add_scalar(&s))
            }
        }
    }
}

#[pymethods]
impl EncryptedArray {
    /// An array of `numbers` (all under one key) with `shape` (default: flat).
    #[staticmethod]
    #[pyo3(signature = (numbers, shape=None))]
    fn from_numbers(
        numbers: Vec<PyRef<'_, EncryptedNumber>>,
        shape: Option<Vec<usize>>,
    ) -> PyResult<Self> {
        let first = numbers
            .first()
            .ok_or_else(|| PyValueError::new_err("an EncryptedArray needs at least one number"))?;
        let pk = first.inner.public_key().clone();
        if numbers.iter().any(|x| x.inner.public_key().n() != pk.n()) {
            return Err(err(unseen_paillier::Error::KeyMismatch));
        }
        let shape = shape.unwrap_or_else(|| vec![numbers.len()]);
        if shape.iter().product::<usize>() != numbers.len() {
            return Err(PyValueError::new_err(format!(
                "shape {shape:?} does not hold {} numbers",
                numbers.len()
            )));
        }
        Ok(Self {
            items: numbers.iter().map(|x| x.inner.clone()).collect(),
            shape,
            pk,
        })
    }

    /// The array's shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.shape)
    }

    /// Number of elements.
    #[getter]
    fn size(&self) -> usize {
        self.items.len()
    }

    /// The key the elements are encrypted under.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.pk.clone(),
        }
    }

    fn __len__(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Element `i` of the flattened array.
    fn item(&self, i: usize) -> PyResult<EncryptedNumber> {
        self.items
            .get(i)
            .map(|x| EncryptedNumber { inner: x.clone() })
            .ok_or_else(|| {
                pyo3::exceptions::PyIndexError::new_err(format!(
                    "index {i} is out of range for {} elements",
                    self.items.len()
                ))
            })
    }

    /// The elements, flattened, as `EncryptedNumber`s.
    fn tolist(&self) -> Vec<EncryptedNumber> {
        self.items
            .iter()
            .map(|x| EncryptedNumber { inner: x.clone() })
            .collect()
    }

    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        let op = self.operand(other)?;
        self.add_op(py, op, false)
    }

    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.__add__(py, other)
    }

    fn __sub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        let op = self.operand(other)?;
        self.add_op(py, op, true)
    }

    fn __neg__(&self, py: Python<'_>) -> PyResult<Self> {
        self.map(py, |_, x| x.neg())
    }

    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        match self.operand(other)? {
            Operand::Encrypted(_) => Err(PyTypeError::new_err(
                "Paillier cannot multiply two encrypted arrays; multiply by a plaintext array",
            )),
            Operand::Plain(o) => self.map(py, |i, x| x.mul_scalar(&o[i])),
            Operand::Scalar(s) => self.map(py, |_, x| x.mul_scalar(&s)),
        }
    }

    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.__mul__(py, other)
    }

    /// `sum_i self[i] * weights[i]` for a plaintext float64 vector of the same size (phe's
    /// semantics, one multi-exponentiation).
    fn dot(
        &self,
        py: Python<'_>,
        weights: PyReadonlyArrayDyn<'_, f64>,
    ) -> PyResult<EncryptedNumber> {
        if weights.len() != self.items.len() {
            return Err(PyValueError::new_err(format!(
                "{} weights for {} encrypted values",
                weights.len(),
                self.items.len()
            )));
        }
        let w: Vec<f64> = weights.as_array().iter().copied().collect();
        let pk = self.pk.clone();
        let r = py.detach(|| {
            let encoded = w
                .iter()
                .map(|x| EncodedNumber::encode(&pk, &Scalar::Float(*x), None, None))
                .collect::<Result<Vec<_>, _>>()?;
            unseen_paillier::EncryptedNumber::weighted_sum(&self.items, &encoded, None)
        });
        EncryptedNumber::wrap(r)
    }

    /// The sum of every element.
    fn sum(&self, py: Python<'_>) -> PyResult<EncryptedNumber> {
        let r = py.detach(|| {
            let mut it = self.items.iter();
            let first = it
                .next()
                .cloned()
                .ok_or(unseen_paillier::Error::LengthMismatch(0, 1))?;
            it.try_fold(first, |acc, x| acc.add(x))
        });
        EncryptedNumber::wrap(r)
    }

    fn __repr__(&self) -> String {
        format!(
            "<unseen EncryptedArray, shape {:?}, {} bits>",
            self.shape,
            self.pk.bits()
        )
    }
}

/// A new key pair: `(PublicKey, PrivateKey)` with an `n_length`-bit modulus (phe's
/// `generate_paillier_keypair`).
#[pyfunction]
#[pyo3(signature = (n_length=2048))]
pub fn generate_keypair(py: Python<'_>, n_length: u32) -> PyResult<(PublicKey, PrivateKey)> {
    let sk = py
        .detach(|| unseen_paillier::PrivateKey::generate(n_length))
        .map_err(err)?;
    let sk = Arc::new(sk);
    Ok((
        PublicKey {
            inner: sk.public_key().clone(),
        },
        PrivateKey { inner: sk },
    ))
}

fn split(k: KeyFile) -> (PublicKey, Option<PrivateKey>) {
    match k {
        KeyFile::Public(pk) => (PublicKey { inner: pk }, None),
        KeyFile::Private(sk) => {
            let sk: Arc<unseen_paillier::PrivateKey> = Arc::from(sk);
            (
                PublicKey {
                    inner: sk.public_key().clone(),
                },
                Some(PrivateKey { inner: sk }),
            )
        }
    }
}

/// Reads a key file (`keys.json` layout or phe's private JWK): `(PublicKey, PrivateKey or
/// None)`. Warns on stderr when other users can read it.
#[pyfunction]
pub fn load_keys(path: std::path::PathBuf) -> PyResult<(PublicKey, Option<PrivateKey>)> {
    unseen_client::keyfile::load(&path)
        .map(split)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Parses key-file text (`keys.json` layout or phe's private JWK).
#[pyfunction]
pub fn read_keys(text: &str) -> PyResult<(PublicKey, Option<PrivateKey>)> {
    let is_jwk = text.contains("\"kty\"");
    let k = if is_jwk {
        formats::read_private_jwk(text).map(|k| KeyFile::Private(Box::new(k)))
    } else {
        formats::read_keys_json(text)
    };
    k.map(split).map_err(err)
}

/// Parses phe's public JWK.
#[pyfunction]
pub fn read_public_jwk(text: &str) -> PyResult<PublicKey> {
    formats::read_public_jwk(text)
        .map(|inner| PublicKey { inner })
        .map_err(err)
}

/// Parses phe's encrypted-number JSON under `public_key`.
#[pyfunction]
pub fn read_encrypted_number(text: &str, public_key: &PublicKey) -> PyResult<EncryptedNumber> {
    formats::read_encrypted_number(text, &public_key.inner)
        .map(|inner| EncryptedNumber { inner })
        .map_err(err)
}
