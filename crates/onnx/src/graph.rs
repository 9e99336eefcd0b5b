//! The walk over an ONNX graph that turns it into layers.
//!
//! Every tensor name maps to a [`Value`]: a constant, or an element-wise function of the
//! activation (the output of the last layer emitted). Element-wise nodes (`Add`, `Mul`, `Pow`,
//! ...) only combine values symbolically; a node that needs the activation itself (a
//! convolution, a dense layer, pooling, flattening) or the graph output first materialises its
//! input as a `square` or `poly` layer, then appends its own layer and starts a new activation.
//! Values of an older activation are stale: using one means a branch or a skip connection,
//! which a layer list cannot express.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use unseen_model::layers::{AvgPool2d, BatchNorm, Poly, BN_EPS};
use unseen_model::{Architecture, Layer, LayerParams, Network, Shape};

use crate::activation::{self, PLACEHOLDER_DEGREE, PLACEHOLDER_RANGE};
use crate::expr::{Expr, Unary};
use crate::onnx_proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, ValueInfoProto,
};
use crate::tensor::Tensor;
use crate::{Error, ImportOptions, Imported, Replaced};

/// Highest degree of an activation polynomial (`unseen_model::layers::poly::MAX_DEGREE`).
const MAX_ACTIVATION_DEGREE: usize = 4;

/// Most values an activation may hold (keeps shape arithmetic far from overflow on hostile files).
const MAX_VALUES: usize = 1 << 32;

/// Largest stride or padding accepted.
const MAX_GEOMETRY: i64 = 1 << 20;

/// Number of values of a shape, if it is within [`MAX_VALUES`].
fn bounded_len(shape: Shape) -> Option<usize> {
    let (c, h, w) = shape.dims();
    c.checked_mul(h)?
        .checked_mul(w)
        .filter(|n| *n <= MAX_VALUES)
}

/// What a tensor name holds.
#[derive(Debug, Clone)]
enum Value {
    Const(Rc<Tensor>),
    /// `expr(x)` of the activation `x` that was current at `stage`.
    Elem {
        stage: usize,
        expr: Expr,
        /// First non-polynomial node in `expr` (name), when there is one.
        origin: Option<String>,
    },
}

/// A node being translated, for messages.
struct Ctx<'a> {
    node: &'a NodeProto,
    name: String,
}

impl Ctx<'_> {
    fn op(&self) -> &str {
        self.node.op_type()
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Node {
            node: self.name.clone(),
            op_type: self.op().to_string(),
            reason: reason.into(),
        }
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).and_then(|a| a.f).unwrap_or(default)
    }

    fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// Name of input `i` (absent and empty optional inputs are `None`).
    fn input(&self, i: usize) -> Option<&str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn required_input(&self, i: usize) -> Result<&str, Error> {
        self.input(i)
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    fn output(&self) -> Result<&str, Error> {
        self.node
            .output
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.err("the node has no output"))
    }

    /// `auto_pad` must be absent, `NOTSET`, or `VALID` without pads.
    fn check_auto_pad(&self, pads_zero: bool) -> Result<(), Error> {
        match self.string("auto_pad").as_deref() {
            None | Some("") | Some("NOTSET") => Ok(()),
            Some("VALID") if pads_zero => Ok(()),
            Some(other) => Err(self.err(format!(
                "auto_pad: {other} is not supported (export with explicit pads)"
            ))),
        }
    }
}

/// A node's display name: its name, else its first output, else its position.
fn node_name(node: &NodeProto, index: usize) -> String {
    if !node.name().is_empty() {
        node.name().to_string()
    } else if let Some(o) = node.output.iter().find(|o| !o.is_empty()) {
        o.clone()
    } else {
        format!("#{index}")
    }
}

/// Square-window geometry `(kernel, stride, padding)` of a convolution or pooling node.
fn window(ctx: &Ctx<'_>, kernel: (usize, usize)) -> Result<(usize, usize, usize), Error> {
    if kernel.0 != kernel.1 {
        return Err(ctx.err(format!(
            "kernel_shape: non-square kernel {}x{} is not supported",
            kernel.0, kernel.1
        )));
    }
    if let Some(ks) = ctx.ints("kernel_shape") {
        if ks != [kernel.0 as i64, kernel.1 as i64] {
            return Err(ctx.err(format!(
                "kernel_shape: {ks:?} does not match the weight's {}x{}",
                kernel.0, kernel.1
            )));
        }
    }
    if let Some(d) = ctx.ints("dilations") {
        if d.iter().any(|v| *v != 1) {
            return Err(ctx.err(format!("dilations: {d:?} is not supported (only 1)")));
        }
    }
    let stride = match ctx.ints("strides") {
        None | Some([]) => 1,
        Some([a, b]) if a == b && *a > 0 && *a <= MAX_GEOMETRY => *a as usize,
        Some(s) => {
            return Err(ctx.err(format!(
                "strides: {s:?} is not supported (equal positive strides only)"
            )))
        }
    };
    let pad = match ctx.ints("pads") {
        None | Some([]) => 0,
        Some(p @ [a, ..])
            if p.len() == 4 && p.iter().all(|v| v == a) && (0..=MAX_GEOMETRY).contains(a) =>
        {
            *a as usize
        }
        Some(p) => {
            return Err(ctx.err(format!(
                "pads: {p:?} is not supported (the same padding on every side only)"
            )))
        }
    };
    ctx.check_auto_pad(pad == 0)?;
    Ok((kernel.0, stride, pad))
}

/// The single graph input that is not an initializer, and its shape.
fn graph_input(graph: &GraphProto) -> Result<(&ValueInfoProto, Shape, Option<i64>), Error> {
    let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name()))
        .collect();
    let input = match inputs.as_slice() {
        [] => {
            return Err(Error::Input(
                "the graph has no input besides its initializers".into(),
            ))
        }
        [one] => *one,
        many => {
            let names: Vec<&str> = many.iter().map(|i| i.name()).collect();
            return Err(Error::Input(format!(
                "the graph has {} inputs ({}); one is supported",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let name = input.name();
    let bad = |reason: String| Error::Input(format!("'{name}': {reason}"));
    let Some(type_proto::Value::TensorType(tt)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(bad("not a tensor".into()));
    };
    if tt.elem_type() != DataType::Float as i32 {
        return Err(bad(format!(
            "element type {} is not float32",
            tt.elem_type()
        )));
    }
    let dims = tt.shape.as_ref().ok_or_else(|| bad("no shape".into()))?;
    let mut values = Vec::new();
    for (i, d) in dims.dim.iter().enumerate() {
        let v = match &d.value {
            Some(dimension::Value::DimValue(v)) if *v > 0 => Some(*v),
            _ => None,
        };
        if i > 0 && v.is_none() {
            return Err(bad(format!("dimension {i} is not a fixed positive size")));
        }
        values.push(v);
    }
    let size = |v: Option<i64>| usize::try_from(v.unwrap_or(0)).unwrap_or(0);
    let shape = match values.as_slice() {
        [_, f] => Shape::Vector(size(*f)),
        [_, c, h, w] => Shape::Image(size(*c), size(*h), size(*w)),
        _ => {
            return Err(bad(format!(
                "rank {} is not supported ([batch, channels, height, width] or [batch, features])",
                values.len()
            )))
        }
    };
    if bounded_len(shape).is_none() {
        return Err(bad(format!("{shape} values are too many")));
    }
    Ok((input, shape, values[0]))
}

/// Nodes in topological order (exported graphs already are; this keeps their order and only
/// moves a node after the producers of its inputs).
fn topological(graph: &GraphProto) -> Result<Vec<usize>, Error> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o.as_str(), i);
        }
    }
    let count = graph.node.len();
    let mut waiting = vec![0usize; count];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, n) in graph.node.iter().enumerate() {
        let deps: BTreeSet<usize> = n
            .input
            .iter()
            .filter_map(|s| producer.get(s.as_str()).copied())
            .filter(|p| *p != i)
            .collect();
        waiting[i] = deps.len();
        for d in deps {
            users[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..count).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(count);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for u in &users[i] {
            waiting[*u] -= 1;
            if waiting[*u] == 0 {
                ready.insert(*u);
            }
        }
    }
    if order.len() < count {
        let stuck = (0..count).find(|i| waiting[*i] > 0).unwrap_or(0);
        let node = &graph.node[stuck];
        return Err(Error::Node {
            node: node_name(node, stuck),
            op_type: node.op_type().to_string(),
            reason: "the graph has a cycle".into(),
        });
    }
    Ok(order)
}

struct Builder<'a> {
    options: &'a ImportOptions,
    initializers: HashMap<&'a str, &'a crate::onnx_proto::TensorProto>,
    values: HashMap<String, Value>,
    consumers: HashMap<&'a str, usize>,
    layers: Vec<Layer>,
    params: Vec<LayerParams>,
    replaced: Vec<Replaced>,
    /// Shape of the current activation.
    shape: Shape,
    /// Batch size the graph was exported with, when fixed.
    batch: Option<i64>,
    /// Incremented with every layer appended.
    stage: usize,
    /// Tensor holding the raw output of the last layer when that is a dense layer or a
    /// convolution (a following `Add` of a constant vector folds into its bias).
    bias_target: Option<String>,
}

impl<'a> Builder<'a> {
    fn value(&mut self, ctx: &Ctx<'_>, name: &str) -> Result<Value, Error> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let Some(t) = self.initializers.get(name) else {
            return Err(ctx.err(format!(
                "input '{name}' is neither an initializer, a Constant nor an earlier node's output"
            )));
        };
        let v = Value::Const(Rc::new(Tensor::from_proto(t)?));
        self.values.insert(name.to_string(), v.clone());
        Ok(v)
    }

    fn constant(&mut self, ctx: &Ctx<'_>, i: usize) -> Result<Rc<Tensor>, Error> {
        let name = ctx.required_input(i)?;
        match self.value(ctx, name)? {
            Value::Const(t) => Ok(t),
            Value::Elem { .. } => Err(ctx.err(format!(
                "input '{name}' must be a constant (an initializer), not computed from the network's input"
            ))),
        }
    }

    /// A constant weight input, which must hold values (so that its dimensions are bounded by
    /// the file's size).
    fn weight(&mut self, ctx: &Ctx<'_>, i: usize) -> Result<Rc<Tensor>, Error> {
        let w = self.constant(ctx, i)?;
        if w.len() == 0 {
            return Err(ctx.err(format!(
                "weight '{}' of shape {} is empty",
                w.name,
                w.shape_text()
            )));
        }
        Ok(w)
    }

    fn stale(&self, ctx: &Ctx<'_>, name: &str) -> Error {
        ctx.err(format!(
            "tensor '{name}' was computed before the last layer; branches and skip connections are not supported"
        ))
    }

    /// Element-wise value of the current activation held by `name`.
    fn elem(&mut self, ctx: &Ctx<'_>, name: &str) -> Result<(Expr, Option<String>), Error> {
        match self.value(ctx, name)? {
            Value::Elem {
                stage,
                expr,
                origin,
            } if stage == self.stage => Ok((expr, origin)),
            Value::Elem { .. } => Err(self.stale(ctx, name)),
            Value::Const(_) => Err(ctx.err(format!(
                "input '{name}' is a constant; expected a tensor computed from the network's input"
            ))),
        }
    }

    fn set(&mut self, name: &str, v: Value) {
        self.values.insert(name.to_string(), v);
    }

    fn set_activation(&mut self, name: &str) {
        self.set(
            name,
            Value::Elem {
                stage: self.stage,
                expr: Expr::x(),
                origin: None,
            },
        );
    }

    /// Appends a layer after checking it fits the current shape.
    fn push(&mut self, ctx: &Ctx<'_>, layer: Layer, params: LayerParams) -> Result<(), Error> {
        let next = layer
            .ops()
            .output_shape(self.shape)
            .map_err(|e| ctx.err(format!("{} layer: {e}", layer.ops().kind())))?;
        if bounded_len(next).is_none() {
            return Err(ctx.err(format!("an output of {next} values is too large")));
        }
        self.shape = next;
        self.layers.push(layer);
        self.params.push(params);
        self.stage += 1;
        self.bias_target = None;
        Ok(())
    }

    /// Turns the element-wise function held by `name` into a layer (nothing for `x` itself);
    /// afterwards `name` holds the new activation.
    fn materialise(&mut self, ctx: &Ctx<'_>, name: &str) -> Result<(), Error> {
        let (expr, origin) = self.elem(ctx, name)?;
        if expr.is_x() {
            return Ok(());
        }
        match expr.as_poly() {
            Some([0.0, 0.0, 1.0]) => self.push(ctx, Layer::Square, LayerParams::default())?,
            Some(c) => {
                let degree = c.len() - 1;
                if degree > MAX_ACTIVATION_DEGREE {
                    return Err(ctx.err(format!(
                        "tensor '{name}' is a polynomial of degree {degree} in the activation; at most \
                         {MAX_ACTIVATION_DEGREE} is supported"
                    )));
                }
                let coefficients = c.to_vec();
                self.push(
                    ctx,
                    Layer::Poly(Poly { coefficients }),
                    LayerParams::default(),
                )?;
            }
            None => {
                let node = origin.unwrap_or_else(|| name.to_string());
                let Some(kind) = activation::identify(|x| expr.eval(x)) else {
                    return Err(ctx.err(format!(
                        "tensor '{name}' (from node '{node}') is a non-polynomial function of the activation \
                         that is not one of {}",
                        activation::ACTIVATIONS.join(", ")
                    )));
                };
                let (lo, hi) = PLACEHOLDER_RANGE;
                let coefficients = activation::fit_activation(kind, lo, hi, PLACEHOLDER_DEGREE);
                self.push(
                    ctx,
                    Layer::Poly(Poly { coefficients }),
                    LayerParams::default(),
                )?;
                self.replaced.push(Replaced {
                    node,
                    op_type: kind.to_string(),
                    layer_index: self.layers.len() - 1,
                });
            }
        }
        self.set_activation(name);
        Ok(())
    }

    /// Materialises input 0 of a node that needs the activation itself.
    fn activation_input(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let name = ctx.required_input(0)?.to_string();
        self.materialise(ctx, &name)
    }

    fn node(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let domain = ctx.node.domain();
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(Error::Unsupported {
                node: ctx.name.clone(),
                op_type: format!("{domain}::{}", ctx.op()),
            });
        }
        match ctx.op() {
            "Identity" => self.alias(ctx),
            "Dropout" => {
                if let Some(mode) = ctx.input(2) {
                    let training = match self.value(ctx, mode)? {
                        Value::Const(t) => t.scalar().is_some_and(|v| v != 0.0),
                        Value::Elem { .. } => true,
                    };
                    if training {
                        return Err(ctx.err("training_mode: only inference (false) is supported"));
                    }
                }
                self.alias(ctx)
            }
            "Constant" => {
                let out = ctx.output()?;
                let t = Tensor::from_constant(out, &ctx.node.attribute).map_err(|e| ctx.err(e))?;
                self.set(out, Value::Const(Rc::new(t)));
                Ok(())
            }
            "Cast" => self.cast(ctx),
            "Conv" => self.conv(ctx),
            "Gemm" => self.gemm(ctx),
            "MatMul" => self.matmul(ctx),
            "AveragePool" => self.average_pool(ctx),
            "GlobalAveragePool" => {
                self.activation_input(ctx)?;
                self.push(ctx, Layer::GlobalAvgPool, LayerParams::default())?;
                self.set_activation(ctx.output()?);
                Ok(())
            }
            "Flatten" => self.flatten(ctx),
            "Reshape" => self.reshape(ctx),
            "BatchNormalization" => self.batch_norm(ctx),
            "Add" | "Sub" | "Mul" | "Div" | "Pow" => self.binary(ctx),
            "Neg" => {
                let out = ctx.output()?;
                let v = match self.value(ctx, ctx.required_input(0)?)? {
                    Value::Const(t) => {
                        let s = t
                            .scalar()
                            .ok_or_else(|| ctx.err("only scalar constants are supported"))?;
                        scalar_const(out, -s)
                    }
                    Value::Elem { stage, .. } if stage != self.stage => {
                        return Err(self.stale(ctx, ctx.required_input(0)?))
                    }
                    Value::Elem {
                        stage,
                        expr,
                        origin,
                    } => Value::Elem {
                        stage,
                        expr: Expr::neg(expr).map_err(|e| ctx.err(e))?,
                        origin,
                    },
                };
                self.set(out, v);
                Ok(())
            }
            "Relu" => self.unary(ctx, Unary::Relu),
            "Sigmoid" => self.unary(ctx, Unary::Sigmoid),
            "Tanh" => self.unary(ctx, Unary::Tanh),
            "Erf" => self.unary(ctx, Unary::Erf),
            "Exp" => self.unary(ctx, Unary::Exp),
            "Gelu" => match ctx.string("approximate").as_deref() {
                None | Some("none") => self.unary(ctx, Unary::Gelu),
                Some("tanh") => self.unary(ctx, Unary::GeluTanh),
                Some(other) => Err(ctx.err(format!("approximate: '{other}' is not supported"))),
            },
            _ => Err(Error::Unsupported {
                node: ctx.name.clone(),
                op_type: ctx.op().to_string(),
            }),
        }
    }

    fn alias(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let v = self.value(ctx, ctx.required_input(0)?)?;
        self.set(ctx.output()?, v);
        Ok(())
    }

    fn cast(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let to = ctx.int("to", 0);
        let out = ctx.output()?;
        match self.value(ctx, ctx.required_input(0)?)? {
            Value::Elem { .. } if to == DataType::Float as i32 as i64 => self.alias(ctx),
            Value::Elem { .. } => Err(ctx.err(format!(
                "to: casting the activation to type {to} is not supported"
            ))),
            Value::Const(t) => {
                let data = match (&t.data, DataType::try_from(to as i32)) {
                    (d, Ok(DataType::Float | DataType::Double)) => {
                        crate::tensor::Data::Float(match d {
                            crate::tensor::Data::Float(v) if to == DataType::Float as i64 => {
                                v.iter().map(|x| f64::from(*x as f32)).collect()
                            }
                            crate::tensor::Data::Float(v) => v.clone(),
                            crate::tensor::Data::Int(v) => v.iter().map(|x| *x as f64).collect(),
                        })
                    }
                    (d, Ok(DataType::Int64 | DataType::Int32)) => {
                        crate::tensor::Data::Int(match d {
                            crate::tensor::Data::Float(v) => v.iter().map(|x| *x as i64).collect(),
                            crate::tensor::Data::Int(v) => v.clone(),
                        })
                    }
                    _ => {
                        return Err(ctx.err(format!(
                            "to: casting a constant to type {to} is not supported"
                        )))
                    }
                };
                let t = Tensor {
                    name: out.to_string(),
                    dims: t.dims.clone(),
                    data,
                };
                self.set(out, Value::Const(Rc::new(t)));
                Ok(())
            }
        }
    }

    fn unary(&mut self, ctx: &Ctx<'_>, f: Unary) -> Result<(), Error> {
        let input = ctx.required_input(0)?;
        let (expr, origin) = self.elem(ctx, input)?;
        if !self.options.approximate_activations {
            return Err(Error::NotPolynomial {
                node: ctx.name.clone(),
                op_type: ctx.op().to_string(),
            });
        }
        let v = Value::Elem {
            stage: self.stage,
            expr: Expr::unary(f, expr).map_err(|e| ctx.err(e))?,
            origin: origin.or_else(|| Some(ctx.name.clone())),
        };
        self.set(ctx.output()?, v);
        Ok(())
    }

    fn binary(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let (na, nb) = (ctx.required_input(0)?, ctx.required_input(1)?);
        let out = ctx.output()?;
        let (a, b) = (self.value(ctx, na)?, self.value(ctx, nb)?);
        let op = ctx.op();
        // Constants with constants: scalars only (exponents, shared coefficients).
        if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
            let (Some(x), Some(y)) = (x.scalar(), y.scalar()) else {
                return Err(ctx.err("arithmetic on constant tensors is supported on scalars only"));
            };
            let v = match op {
                "Add" => x + y,
                "Sub" => x - y,
                "Mul" => x * y,
                "Div" => x / y,
                _ => x.powf(y),
            };
            self.set(out, scalar_const(out, v));
            return Ok(());
        }
        // The bias of `MatMul` (or an extra one of a dense layer or convolution).
        if matches!(op, "Add" | "Sub") && self.fold_bias(ctx, (na, &a), (nb, &b))? {
            return Ok(());
        }
        let expr_of = |this: &Self,
                       name: &str,
                       v: Value|
         -> Result<(Expr, Option<String>), Error> {
            match v {
                Value::Const(t) => match t.scalar() {
                    Some(s) => Ok((Expr::constant(s), None)),
                    None => Err(ctx.err(format!(
                        "input '{name}': a constant of shape {} applied element-wise is not supported (scalars only)",
                        t.shape_text()
                    ))),
                },
                Value::Elem { stage, expr, origin } if stage == this.stage => Ok((expr, origin)),
                Value::Elem { .. } => Err(this.stale(ctx, name)),
            }
        };
        let a_is_const = matches!(a, Value::Const(_));
        let b_is_const = matches!(b, Value::Const(_));
        let (ea, oa) = expr_of(self, na, a)?;
        let (eb, ob) = expr_of(self, nb, b)?;
        let origin = oa.or(ob);
        let expr = match op {
            "Add" => Expr::add(ea, eb),
            "Sub" => Expr::sub(ea, eb),
            "Mul" => Expr::mul(ea, eb),
            "Div" => {
                if !b_is_const && eb.as_poly().is_none_or(|c| c.len() > 1) && !self.options.approximate_activations {
                    return Err(Error::NotPolynomial {
                        node: ctx.name.clone(),
                        op_type: op.to_string(),
                    });
                }
                Expr::div(ea, eb)
            }
            _ => {
                // Pow: a constant non-negative integer exponent keeps a polynomial.
                if a_is_const || !b_is_const {
                    return Err(ctx.err("only a constant exponent is supported"));
                }
                let k = eb.as_poly().and_then(|c| c.first().copied()).unwrap_or(f64::NAN);
                if !(k.fract() == 0.0 && (0.0..=MAX_ACTIVATION_DEGREE as f64).contains(&k)) {
                    return Err(ctx.err(format!(
                        "exponent {k} is not supported (an integer from 0 to {MAX_ACTIVATION_DEGREE})"
                    )));
                }
                Expr::powi(ea, k as u32)
            }
        }
        .map_err(|e| ctx.err(e))?;
        let origin = if expr.as_poly().is_none() {
            origin.or_else(|| Some(ctx.name.clone()))
        } else {
            None
        };
        let v = Value::Elem {
            stage: self.stage,
            expr,
            origin,
        };
        self.set(out, v);
        Ok(())
    }

    /// `Add`/`Sub` of a constant vector to the raw output of the last dense layer or
    /// convolution: folded into its bias. Returns whether it did.
    fn fold_bias(
        &mut self,
        ctx: &Ctx<'_>,
        a: (&str, &Value),
        b: (&str, &Value),
    ) -> Result<bool, Error> {
        let (target, c) = match (a, b) {
            ((n, Value::Elem { .. }), (_, Value::Const(c))) => (n, c),
            ((_, Value::Const(c)), (n, Value::Elem { .. })) if ctx.op() == "Add" => (n, c),
            _ => return Ok(false),
        };
        let sign = if ctx.op() == "Sub" { -1.0 } else { 1.0 };
        if c.scalar().is_some()
            || self.bias_target.as_deref() != Some(target)
            || self.consumers.get(target).copied() != Some(1)
        {
            return Ok(false);
        }
        let Some(layer) = self.layers.last() else {
            return Ok(false);
        };
        let fits = match layer {
            // [out] or [1, out] against [batch, out].
            Layer::Linear(l) => {
                c.len() == l.out_features
                    && c.dims.len() <= 2
                    && c.dims.last() == Some(&l.out_features)
            }
            // [C, 1, 1] or [1, C, 1, 1] against [batch, C, H, W].
            Layer::Conv2d(l) => {
                c.len() == l.out_channels
                    && (c.dims.len() == 3 || c.dims.len() == 4)
                    && c.dims[c.dims.len() - 3] == l.out_channels
            }
            _ => false,
        };
        if !fits {
            return Ok(false);
        }
        let add = c.floats()?;
        let Some(p) = self.params.last_mut() else {
            return Ok(false);
        };
        for (bias, v) in p.bias.iter_mut().zip(&add) {
            *bias = (f64::from(*bias) + sign * f64::from(*v)) as f32;
        }
        let out = ctx.output()?.to_string();
        self.set_activation(&out);
        self.bias_target = Some(out);
        Ok(true)
    }

    fn conv(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let w = self.weight(ctx, 1)?;
        let [out_c, in_c, kh, kw] = w.dims[..] else {
            return Err(ctx.err(format!(
                "weight '{}' of shape {} is not supported (2-D convolutions only: [out, in, k, k])",
                w.name,
                w.shape_text()
            )));
        };
        let group = ctx.int("group", 1);
        if group != 1 {
            return Err(ctx.err(format!(
                "group: grouped convolutions (group={group}) are not supported"
            )));
        }
        let (kernel, stride, padding) = window(ctx, (kh, kw))?;
        let weight = w.floats()?;
        let bias = match ctx.input(2) {
            Some(_) => {
                let b = self.constant(ctx, 2)?;
                if b.len() != out_c {
                    return Err(ctx.err(format!(
                        "bias '{}' has {} values for {out_c} channels",
                        b.name,
                        b.len()
                    )));
                }
                b.floats()?
            }
            None => vec![0.0; out_c],
        };
        self.activation_input(ctx)?;
        self.push(
            ctx,
            Layer::conv(in_c, out_c, kernel, stride, padding),
            LayerParams {
                weight,
                bias,
                running: Vec::new(),
            },
        )?;
        let out = ctx.output()?;
        self.set_activation(out);
        self.bias_target = Some(out.to_string());
        Ok(())
    }

    /// Appends a dense layer from a weight in `[out, in]` layout.
    fn dense(
        &mut self,
        ctx: &Ctx<'_>,
        (out_f, in_f): (usize, usize),
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<(), Error> {
        self.activation_input(ctx)?;
        self.push(
            ctx,
            Layer::linear(in_f, out_f),
            LayerParams {
                weight,
                bias,
                running: Vec::new(),
            },
        )?;
        let out = ctx.output()?;
        self.set_activation(out);
        self.bias_target = Some(out.to_string());
        Ok(())
    }

    fn gemm(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        if ctx.int("transA", 0) != 0 {
            return Err(ctx.err("transA: a transposed input is not supported"));
        }
        let (alpha, beta) = (ctx.float("alpha", 1.0), ctx.float("beta", 1.0));
        let w = self.weight(ctx, 1)?;
        let [d0, d1] = w.dims[..] else {
            return Err(ctx.err(format!(
                "weight '{}' of shape {} is not a matrix",
                w.name,
                w.shape_text()
            )));
        };
        let raw = w.floats()?;
        let trans_b = ctx.int("transB", 0) != 0;
        let (out_f, in_f) = if trans_b { (d0, d1) } else { (d1, d0) };
        let mut weight = if trans_b {
            raw
        } else {
            transpose(&raw, d0, d1)
        };
        if alpha != 1.0 {
            for v in &mut weight {
                *v = (f64::from(*v) * f64::from(alpha)) as f32;
            }
        }
        let mut bias = vec![0.0f32; out_f];
        if ctx.input(2).is_some() {
            let c = self.constant(ctx, 2)?;
            let values = c.floats()?;
            let fits = c.len() == 1
                || (c.len() == out_f && c.dims.len() <= 2 && c.dims.last() == Some(&out_f));
            if !fits {
                return Err(ctx.err(format!(
                    "C: bias '{}' of shape {} does not broadcast to [batch, {out_f}]",
                    c.name,
                    c.shape_text()
                )));
            }
            for (i, b) in bias.iter_mut().enumerate() {
                *b = (f64::from(values[if values.len() == 1 { 0 } else { i }]) * f64::from(beta))
                    as f32;
            }
        }
        self.dense(ctx, (out_f, in_f), weight, bias)
    }

    fn matmul(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let w = self.weight(ctx, 1)?;
        let [in_f, out_f] = w.dims[..] else {
            return Err(ctx.err(format!(
                "weight '{}' of shape {} is not supported (a constant [in, out] matrix)",
                w.name,
                w.shape_text()
            )));
        };
        let weight = transpose(&w.floats()?, in_f, out_f);
        self.dense(ctx, (out_f, in_f), weight, vec![0.0; out_f])
    }

    fn average_pool(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        let kernel = match ctx.ints("kernel_shape") {
            Some([a, b]) if *a > 0 && *b > 0 => (*a as usize, *b as usize),
            other => return Err(ctx.err(format!("kernel_shape: {other:?} is not a 2-D window"))),
        };
        let (k, stride, pad) = window(ctx, kernel)?;
        if pad != 0 {
            return Err(ctx.err(format!(
                "pads: padding {pad} is not supported (pooling without padding only)"
            )));
        }
        self.activation_input(ctx)?;
        if ctx.int("ceil_mode", 0) != 0 {
            // Same as floor mode when the windows tile the image exactly.
            let (_, h, w) = self.shape.dims();
            if h < k || w < k || (h - k) % stride != 0 || (w - k) % stride != 0 {
                return Err(ctx.err("ceil_mode: 1 is not supported (export with ceil_mode=False)"));
            }
        }
        self.push(
            ctx,
            Layer::AvgPool2d(AvgPool2d { kernel: k, stride }),
            LayerParams::default(),
        )?;
        self.set_activation(ctx.output()?);
        Ok(())
    }

    /// Flattening `[batch, C, H, W]` to `[batch, C*H*W]` (nothing to do on a vector).
    fn flatten_to_vector(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        match self.shape {
            Shape::Vector(_) => self.alias(ctx),
            Shape::Image(..) => {
                self.activation_input(ctx)?;
                self.push(ctx, Layer::Flatten, LayerParams::default())?;
                self.set_activation(ctx.output()?);
                Ok(())
            }
        }
    }

    fn rank(&self) -> i64 {
        match self.shape {
            Shape::Vector(_) => 2,
            Shape::Image(..) => 4,
        }
    }

    fn flatten(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        // Checks the input first, so that a stale or constant input is named as such.
        self.elem(ctx, ctx.required_input(0)?)?;
        let axis = ctx.int("axis", 1);
        let axis = if axis < 0 { axis + self.rank() } else { axis };
        if axis != 1 {
            return Err(ctx.err(format!(
                "axis: flattening at axis {axis} is not supported (only 1)"
            )));
        }
        self.flatten_to_vector(ctx)
    }

    fn reshape(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        self.elem(ctx, ctx.required_input(0)?)?;
        let target = self.constant(ctx, 1)?;
        let Some(t) = target.ints() else {
            return Err(ctx.err(format!("shape '{}' is not an integer tensor", target.name)));
        };
        let allow_zero = ctx.int("allowzero", 0) != 0;
        let batch_ok =
            |d: i64| d == -1 || d == 1 || (d == 0 && !allow_zero) || Some(d) == self.batch;
        let (c, h, w) = self.shape.dims();
        let flat = self.shape.len() as i64;
        let image = match self.shape {
            Shape::Image(..) => Some([c as i64, h as i64, w as i64]),
            Shape::Vector(_) => None,
        };
        match t {
            [b, f] if batch_ok(*b) && (*f == flat || (*f == -1 && *b != -1)) => self.flatten_to_vector(ctx),
            [b, rest @ ..] if batch_ok(*b) && image.is_some_and(|d| d == rest) => self.alias(ctx),
            _ => Err(ctx.err(format!(
                "shape: reshaping a [batch, {}] tensor to {t:?} is not supported (only flattening to [batch, {flat}])",
                self.shape.to_string().replace('x', ", ")
            ))),
        }
    }

    fn batch_norm(&mut self, ctx: &Ctx<'_>) -> Result<(), Error> {
        if ctx.int("training_mode", 0) != 0 {
            return Err(ctx.err("training_mode: only inference (0) is supported"));
        }
        if ctx.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(ctx.err("running statistics outputs (training) are not supported"));
        }
        let features = self.shape.channels();
        let mut parts = Vec::with_capacity(4);
        for (i, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let t = self.constant(ctx, i)?;
            if t.len() != features {
                return Err(ctx.err(format!(
                    "{what} '{}' has {} values for {features} channels",
                    t.name,
                    t.len()
                )));
            }
            parts.push(t.floats()?);
        }
        let eps = f64::from(ctx.float("epsilon", 1e-5));
        let shift = eps - f64::from(BN_EPS);
        let mut var = parts.pop().unwrap_or_default();
        let mean = parts.pop().unwrap_or_default();
        if shift != 0.0 {
            for v in &mut var {
                *v = (f64::from(*v) + shift) as f32;
            }
            if var.iter().any(|v| *v < 0.0) {
                return Err(ctx.err(format!(
                    "epsilon: {eps} is below unseen's fixed {BN_EPS} by more than a running variance"
                )));
            }
        }
        let bias = parts.pop().unwrap_or_default();
        let weight = parts.pop().unwrap_or_default();
        self.activation_input(ctx)?;
        self.push(
            ctx,
            Layer::BatchNorm(BatchNorm { features }),
            LayerParams {
                weight,
                bias,
                running: [mean, var].concat(),
            },
        )?;
        self.set_activation(ctx.output()?);
        Ok(())
    }
}

fn scalar_const(name: &str, v: f64) -> Value {
    Value::Const(Rc::new(Tensor {
        name: name.to_string(),
        dims: Vec::new(),
        data: crate::tensor::Data::Float(vec![v]),
    }))
}

/// `[rows, cols]` to `[cols, rows]`.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// Translates a decoded model.
pub(crate) fn build(model: &ModelProto, options: &ImportOptions) -> Result<Imported, Error> {
    let graph = model.graph.as_ref().ok_or(Error::EmptyGraph)?;
    if graph.node.is_empty() {
        return Err(Error::EmptyGraph);
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
        .ok_or_else(|| Error::NotOnnx("no opset is imported for the default ONNX domain".into()))?;
    let producer = format!("{} {}", model.producer_name(), model.producer_version())
        .trim()
        .to_string();
    let output = match graph.output.as_slice() {
        [] => return Err(Error::Output("the graph has no output".into())),
        [one] => one.name().to_string(),
        many => {
            let names: Vec<&str> = many.iter().map(|o| o.name()).collect();
            return Err(Error::Output(format!(
                "the graph has {} outputs ({}); one is supported",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let (input, shape, batch) = graph_input(graph)?;
    let order = topological(graph)?;
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *consumers.entry(i.as_str()).or_default() += 1;
        }
    }
    *consumers.entry(output.as_str()).or_default() += 1;
    let mut b = Builder {
        options,
        initializers: graph.initializer.iter().map(|t| (t.name(), t)).collect(),
        values: HashMap::new(),
        consumers,
        layers: Vec::new(),
        params: Vec::new(),
        replaced: Vec::new(),
        shape,
        batch,
        stage: 0,
        bias_target: None,
    };
    b.set_activation(input.name());
    for i in order {
        let node = &graph.node[i];
        let ctx = Ctx {
            node,
            name: node_name(node, i),
        };
        b.node(&ctx)?;
    }
    // The output must be the last activation, possibly through element-wise nodes.
    match b.values.get(&output) {
        Some(Value::Elem { stage, .. }) if *stage == b.stage => {}
        Some(_) => {
            return Err(Error::Output(format!(
                "'{output}' is not the network's last activation (branches are not supported)"
            )))
        }
        None => {
            return Err(Error::Output(format!(
                "'{output}' is not produced by any node"
            )))
        }
    }
    let out_node = NodeProto {
        op_type: Some("graph output".into()),
        ..Default::default()
    };
    let ctx = Ctx {
        node: &out_node,
        name: output.clone(),
    };
    b.materialise(&ctx, &output)?;
    if b.layers.is_empty() {
        return Err(Error::EmptyGraph);
    }
    let name = if graph.name().is_empty() {
        "onnx"
    } else {
        graph.name()
    };
    let arch = Architecture {
        name: name.to_string(),
        input: shape,
        layers: b.layers,
    };
    let network = Network::from_params(arch, b.params).map_err(Error::Network)?;
    Ok(Imported {
        network,
        replaced: b.replaced,
        opset,
        producer,
    })
}
