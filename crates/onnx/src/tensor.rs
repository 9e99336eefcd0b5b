//! Constant tensors (initializers and `Constant` nodes), decoded from `TensorProto`.

use crate::onnx_proto::{tensor_proto::DataType, AttributeProto, TensorProto};
use crate::Error;

/// Values of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    /// float32 or float64 values (float32 converted exactly).
    Float(Vec<f64>),
    /// int32 or int64 values.
    Int(Vec<i64>),
}

/// A decoded constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    /// Name (for messages).
    pub name: String,
    /// Dimensions (empty for a scalar).
    pub dims: Vec<usize>,
    /// Values in row-major order.
    pub data: Data,
}

fn err(name: &str, reason: impl Into<String>) -> Error {
    Error::Tensor {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn from_raw<const N: usize, T>(
    name: &str,
    raw: &[u8],
    count: usize,
    f: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, Error> {
    if raw.len() != count * N {
        return Err(err(
            name,
            format!(
                "{} bytes of data for {count} values of {N} bytes",
                raw.len()
            ),
        ));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect())
}

fn counted<T>(name: &str, v: Vec<T>, count: usize) -> Result<Vec<T>, Error> {
    if v.len() != count {
        return Err(err(
            name,
            format!("{} values for {count} elements", v.len()),
        ));
    }
    Ok(v)
}

impl Tensor {
    /// Decodes a `TensorProto` of type float, double, int32 or int64.
    pub(crate) fn from_proto(t: &TensorProto) -> Result<Self, Error> {
        let name = t.name().to_string();
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            return Err(err(
                &name,
                "data is stored in an external file; export with external_data=False",
            ));
        }
        if t.segment.is_some() {
            return Err(err(&name, "segmented tensors are not supported"));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        let mut count: usize = 1;
        for d in &t.dims {
            let d =
                usize::try_from(*d).map_err(|_| err(&name, format!("negative dimension {d}")))?;
            count = count
                .checked_mul(d)
                .ok_or_else(|| err(&name, "too many elements"))?;
            dims.push(d);
        }
        let raw = t.raw_data.as_deref();
        let dtype = t.data_type();
        let data = match DataType::try_from(dtype) {
            Ok(DataType::Float) => Data::Float(match raw {
                Some(r) => from_raw(&name, r, count, |b| f64::from(f32::from_le_bytes(b)))?,
                None => counted(
                    &name,
                    t.float_data.iter().map(|v| f64::from(*v)).collect(),
                    count,
                )?,
            }),
            Ok(DataType::Double) => Data::Float(match raw {
                Some(r) => from_raw(&name, r, count, f64::from_le_bytes)?,
                None => counted(&name, t.double_data.clone(), count)?,
            }),
            Ok(DataType::Int64) => Data::Int(match raw {
                Some(r) => from_raw(&name, r, count, i64::from_le_bytes)?,
                None => counted(&name, t.int64_data.clone(), count)?,
            }),
            Ok(DataType::Int32) => Data::Int(match raw {
                Some(r) => from_raw(&name, r, count, |b| i64::from(i32::from_le_bytes(b)))?,
                None => counted(
                    &name,
                    t.int32_data.iter().map(|v| i64::from(*v)).collect(),
                    count,
                )?,
            }),
            Ok(other) => {
                return Err(err(
                    &name,
                    format!(
                        "data type {} is not supported (float32, float64, int32 or int64)",
                        other.as_str_name()
                    ),
                ))
            }
            Err(_) => return Err(err(&name, format!("unknown data type {dtype}"))),
        };
        Ok(Self { name, dims, data })
    }

    /// The value of a `Constant` node (attribute `value`, `value_float(s)` or `value_int(s)`).
    pub(crate) fn from_constant(name: &str, attrs: &[AttributeProto]) -> Result<Self, String> {
        let Some(a) = attrs.first() else {
            return Err("no value attribute".into());
        };
        if attrs.len() > 1 {
            return Err(format!("{} value attributes, expected one", attrs.len()));
        }
        let make = |dims: Vec<usize>, data: Data| Tensor {
            name: name.to_string(),
            dims,
            data,
        };
        Ok(match a.name() {
            "value" => {
                let t = a.t.as_ref().ok_or("attribute 'value' holds no tensor")?;
                let mut t = Tensor::from_proto(t).map_err(|e| e.to_string())?;
                t.name = name.to_string();
                t
            }
            "value_float" => make(
                vec![],
                Data::Float(vec![f64::from(a.f.ok_or("value_float holds no float")?)]),
            ),
            "value_floats" => make(
                vec![a.floats.len()],
                Data::Float(a.floats.iter().map(|v| f64::from(*v)).collect()),
            ),
            "value_int" => make(
                vec![],
                Data::Int(vec![a.i.ok_or("value_int holds no integer")?]),
            ),
            "value_ints" => make(vec![a.ints.len()], Data::Int(a.ints.clone())),
            other => return Err(format!("attribute '{other}' is not supported")),
        })
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        match &self.data {
            Data::Float(v) => v.len(),
            Data::Int(v) => v.len(),
        }
    }

    /// The single value of a tensor with one element, as a float.
    pub(crate) fn scalar(&self) -> Option<f64> {
        match &self.data {
            Data::Float(v) if v.len() == 1 => Some(v[0]),
            Data::Int(v) if v.len() == 1 => Some(v[0] as f64),
            _ => None,
        }
    }

    /// Integer values (shapes).
    pub(crate) fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::Int(v) => Some(v),
            Data::Float(_) => None,
        }
    }

    /// Float values as float32 (weights); an error for integer tensors or values out of range.
    pub(crate) fn floats(&self) -> Result<Vec<f32>, Error> {
        match &self.data {
            Data::Float(v) => {
                let out: Vec<f32> = v.iter().map(|x| *x as f32).collect();
                if out.iter().any(|x| !x.is_finite()) {
                    return Err(err(&self.name, "weights must be finite float32 values"));
                }
                Ok(out)
            }
            Data::Int(_) => Err(err(
                &self.name,
                "weights must be floating point, not integers",
            )),
        }
    }

    /// Dimensions as text (`[4, 1, 5, 5]`).
    pub(crate) fn shape_text(&self) -> String {
        format!("{:?}", self.dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(dtype: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: Some("t".into()),
            data_type: Some(dtype as i32),
            dims: dims.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_raw_and_typed_data() {
        let mut t = proto(DataType::Float, &[2]);
        t.raw_data = Some([1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
        assert_eq!(
            Tensor::from_proto(&t).expect("ok").data,
            Data::Float(vec![1.5, -2.0])
        );
        let mut t = proto(DataType::Double, &[1]);
        t.double_data = vec![0.25];
        assert_eq!(Tensor::from_proto(&t).expect("ok").scalar(), Some(0.25));
        let mut t = proto(DataType::Int64, &[2]);
        t.raw_data = Some([1i64.to_le_bytes(), 144i64.to_le_bytes()].concat());
        let d = Tensor::from_proto(&t).expect("ok");
        assert_eq!(d.ints(), Some(&[1, 144][..]));
        assert!(d
            .floats()
            .expect_err("ints")
            .to_string()
            .contains("not integers"));
        let mut t = proto(DataType::Float, &[3]);
        t.float_data = vec![1.0];
        assert!(Tensor::from_proto(&t).is_err());
        let t = proto(DataType::Float16, &[1]);
        assert!(Tensor::from_proto(&t)
            .expect_err("f16")
            .to_string()
            .contains("FLOAT16"));
        let mut t = proto(DataType::Float, &[1]);
        t.data_location = Some(1);
        assert!(Tensor::from_proto(&t)
            .expect_err("external")
            .to_string()
            .contains("external"));
        let t = proto(DataType::Float, &[-1]);
        assert!(Tensor::from_proto(&t).is_err());
    }
}
