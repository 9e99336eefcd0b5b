//! Graphs built here with the prost types (the exporters' fixtures in `tests/onnx/` cover only
//! part of the mapping): the other spellings of dense layers, pooling, reshapes and activations,
//! checked against onnxruntime where they import, and the error messages where they do not.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use unseen_model::{Layer, Shape};
use unseen_onnx::onnx_proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use unseen_onnx::{fit_activation, import, Error, ImportOptions, Imported};

// ---------------------------------------------------------------- building graphs

fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..attr(name)
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        r#type: Some(AttributeType::Ints as i32),
        ..attr(name)
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..attr(name)
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(AttributeType::String as i32),
        ..attr(name)
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// A float32 tensor in raw_data.
fn f32s(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A float32 tensor in float_data.
fn f32s_typed(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

fn i64s(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Int64 as i32),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A float tensor value with a symbolic first dimension when `dims[0]` is 0.
fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(if *d == 0 {
                tensor_shape_proto::dimension::Value::DimParam("batch".into())
            } else {
                tensor_shape_proto::dimension::Value::DimValue(*d)
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Graph {
    input: (&'static str, Vec<i64>),
    output: &'static str,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    opset: i64,
}

impl Graph {
    fn new(input_dims: &[i64], output: &'static str, opset: i64) -> Self {
        Self {
            input: ("x", input_dims.to_vec()),
            output,
            nodes: Vec::new(),
            inits: Vec::new(),
            opset,
        }
    }

    fn proto(&self) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            producer_name: Some("unseen-onnx tests".into()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset),
            }],
            graph: Some(GraphProto {
                name: Some("synthetic".into()),
                node: self.nodes.clone(),
                initializer: self.inits.clone(),
                input: vec![value_info(self.input.0, &self.input.1)],
                output: vec![value_info(self.output, &[])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }

    fn import(&self, approximate_activations: bool) -> Result<Imported, Error> {
        import(
            &self.bytes(),
            &ImportOptions {
                approximate_activations,
            },
        )
    }
}

/// Reproducible values in `[-scale, scale]`.
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).max(1);
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let u = (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * scale
        })
        .collect()
}

fn kinds(m: &Imported) -> Vec<&'static str> {
    m.network
        .arch
        .layers
        .iter()
        .map(|l| l.ops().kind())
        .collect()
}

// ---------------------------------------------------------------- onnxruntime

/// The Python with onnxruntime and numpy: `UNSEEN_PYTHON`, or the venv `scripts/test.sh` makes.
fn python() -> String {
    match std::env::var("UNSEEN_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let venv =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/phe-venv/bin/python");
            assert!(
                venv.exists(),
                "a Python with onnxruntime and numpy is needed: run `bash scripts/test.sh` (it makes target/phe-venv), or set UNSEEN_PYTHON"
            );
            venv.display().to_string()
        }
    }
}

/// Runs `graph` in onnxruntime on `input` and compares with the imported network.
fn check_against_onnxruntime(tag: &str, graph: &Graph, m: &Imported, input: &[f32], batch: usize) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("onnx-synthetic-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (model, inp, out) = (
        dir.join(format!("{tag}.onnx")),
        dir.join(format!("{tag}.in.f32")),
        dir.join(format!("{tag}.out.f32")),
    );
    std::fs::write(&model, graph.bytes()).expect("write model");
    std::fs::write(
        &inp,
        input
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .expect("write input");
    let python = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/onnx/ort_logits.py");
    let run = Command::new(&python)
        .args([&script, &model, &inp, &out])
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        run.status.success(),
        "{tag}: onnxruntime failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let theirs: Vec<f32> = std::fs::read(&out)
        .expect("read logits")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let ours = m.network.logits(input, batch);
    assert_eq!(ours.len(), theirs.len(), "{tag}");
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = theirs.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    assert!(scale > 1e-2, "{tag}: degenerate outputs");
    assert!(
        worst <= 1e-4 * (1.0 + scale),
        "{tag}: max |unseen - onnxruntime| = {worst} (outputs up to {scale})"
    );
}

// ---------------------------------------------------------------- graphs that import

/// MatMul + Add, polynomials through Sub, Div, Neg and Mul of two branches, Gemm with
/// transB = 0, alpha and beta; a Dropout and an Identity on the way.
fn mlp() -> Graph {
    let mut g = Graph::new(&[0, 12], "y", 13);
    g.inits = vec![
        f32s("W1", &[12, 8], &values(1, 96, 0.4)),
        f32s("b1", &[8], &values(2, 8, 0.3)),
        f32s("half", &[], &[0.5]),
        f32s_typed("two", &[1], &[2.0]),
        f32s("W2", &[8, 3], &values(3, 24, 0.5)),
        f32s("C", &[1, 3], &values(4, 3, 0.5)),
    ];
    g.nodes = vec![
        node("MatMul", "mm", &["x", "W1"], &["h0"], vec![]),
        node("Add", "bias", &["h0", "b1"], &["h"], vec![]),
        node("Dropout", "drop", &["h"], &["hd"], vec![]),
        node("Sub", "sub", &["hd", "half"], &["s"], vec![]),
        node("Div", "div", &["s", "two"], &["d"], vec![]),
        node("Neg", "neg", &["d"], &["n"], vec![]),
        node("Mul", "sq", &["n", "n"], &["n2"], vec![]),
        node("Add", "poly", &["n2", "hd"], &["p"], vec![]),
        node("Identity", "id", &["p"], &["pi"], vec![]),
        node(
            "Gemm",
            "gemm",
            &["pi", "W2", "C"],
            &["y"],
            vec![float("alpha", 0.5), float("beta", 2.0)],
        ),
    ];
    g
}

#[test]
fn matmul_add_polynomials_and_gemm_match_onnxruntime() {
    let g = mlp();
    let m = g.import(false).expect("imports");
    assert_eq!(kinds(&m), ["linear", "poly", "linear"]);
    assert_eq!(m.network.arch.name, "synthetic");
    assert_eq!(m.network.arch.input, Shape::Vector(12));
    // (-(h - 0.5) / 2)^2 + h = 0.0625 + 0.75 h + 0.25 h^2
    let Layer::Poly(p) = &m.network.arch.layers[1] else {
        panic!("not a poly");
    };
    for (got, want) in p.coefficients.iter().zip([0.0625, 0.75, 0.25]) {
        assert!((got - want).abs() < 1e-12, "{:?}", p.coefficients);
    }
    // The bias of the Add folded into the dense layer.
    assert_eq!(m.network.params[0].bias, values(2, 8, 0.3));
    check_against_onnxruntime("mlp", &g, &m, &values(5, 7 * 12, 1.5), 7);
}

/// Conv without bias nor padding, BatchNormalization with another epsilon, x^3 through Pow with an
/// int64 exponent, Constant nodes, GlobalAveragePool, Reshape to [-1, C], Gemm.
fn cnn() -> Graph {
    let mut g = Graph::new(&[1, 2, 9, 9], "y", 17);
    g.inits = vec![
        f32s("W", &[3, 2, 3, 3], &values(6, 54, 0.5)),
        f32s("gamma", &[3], &[1.2, 0.8, 1.0]),
        f32s("beta", &[3], &[0.1, -0.2, 0.05]),
        f32s("mean", &[3], &[0.05, -0.1, 0.0]),
        f32s("var", &[3], &[0.3, 0.5, 0.2]),
        i64s("three", &[], &[3]),
        i64s("shape", &[2], &[-1, 3]),
        f32s("Wd", &[4, 3], &values(7, 12, 0.8)),
        f32s("bd", &[4], &values(8, 4, 0.2)),
    ];
    g.nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "W"],
            &["c"],
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        node(
            "BatchNormalization",
            "bn",
            &["c", "gamma", "beta", "mean", "var"],
            &["b"],
            vec![float("epsilon", 1e-3)],
        ),
        node("Pow", "cube", &["b", "three"], &["b3"], vec![]),
        node(
            "Constant",
            "k",
            &[],
            &["k"],
            vec![float("value_float", 0.2)],
        ),
        node("Mul", "scale", &["b3", "k"], &["s3"], vec![]),
        node("Add", "lin", &["s3", "b"], &["p"], vec![]),
        node("GlobalAveragePool", "gap", &["p"], &["g"], vec![]),
        node("Reshape", "flat", &["g", "shape"], &["f"], vec![]),
        node(
            "Gemm",
            "dense",
            &["f", "Wd", "bd"],
            &["y"],
            vec![int("transB", 1)],
        ),
    ];
    g
}

#[test]
fn conv_batch_norm_pool_and_reshape_match_onnxruntime() {
    let g = cnn();
    let m = g.import(false).expect("imports");
    assert_eq!(
        kinds(&m),
        [
            "conv2d",
            "batch_norm",
            "poly",
            "global_avg_pool",
            "flatten",
            "linear"
        ]
    );
    assert_eq!(m.network.shapes[1], Shape::Image(3, 4, 4));
    // Conv without bias: zeros. Epsilon 1e-3 folded into the variance.
    assert_eq!(m.network.params[0].bias, [0.0; 3]);
    let var = &m.network.params[1].running[3..];
    assert!((var[0] - (0.3 + 1e-3 - 1e-5)).abs() < 1e-6, "{var:?}");
    check_against_onnxruntime("cnn", &g, &m, &values(9, 162, 1.0), 1);
}

#[test]
fn average_pool_and_flatten_match_onnxruntime() {
    let mut g = Graph::new(&[0, 1, 9, 9], "y", 13);
    g.inits = vec![
        f32s("W", &[2, 1, 3, 3], &values(10, 18, 0.6)),
        f32s("B", &[2], &[0.1, -0.1]),
        f32s("Wd", &[3, 18], &values(11, 54, 0.4)),
    ];
    g.nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "W", "B"],
            &["c"],
            vec![ints("pads", &[1, 1, 1, 1])],
        ),
        node("Mul", "sq", &["c", "c"], &["s"], vec![]),
        node(
            "AveragePool",
            "pool",
            &["s"],
            &["p"],
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[3, 3]),
                int("ceil_mode", 0),
            ],
        ),
        node("Flatten", "flat", &["p"], &["f"], vec![int("axis", 1)]),
        node("MatMul", "mm", &["f", "WdT"], &["y"], vec![]),
    ];
    // MatMul takes [in, out].
    let wd = values(11, 54, 0.4);
    let wdt: Vec<f32> = (0..54).map(|i| wd[(i % 3) * 18 + i / 3]).collect();
    g.inits.push(f32s("WdT", &[18, 3], &wdt));
    let m = g.import(false).expect("imports");
    assert_eq!(
        kinds(&m),
        ["conv2d", "square", "avg_pool2d", "flatten", "linear"]
    );
    assert_eq!(m.network.params[4].weight, wd);
    assert_eq!(m.network.params[4].bias, [0.0; 3]);
    check_against_onnxruntime("pool", &g, &m, &values(12, 5 * 81, 1.0), 5);
}

// ---------------------------------------------------------------- activations

/// `x -> Dense(4->4) -> act -> Dense(4->2)`, `act` built by `nodes` from `a` to `z`.
fn with_activation(nodes: Vec<NodeProto>, extra: Vec<TensorProto>, opset: i64) -> Graph {
    let mut g = Graph::new(&[0, 4], "y", opset);
    g.inits = vec![
        f32s("W1", &[4, 4], &values(20, 16, 0.5)),
        f32s("W2", &[2, 4], &values(21, 8, 0.5)),
    ];
    g.inits.extend(extra);
    g.nodes = vec![node(
        "Gemm",
        "d1",
        &["x", "W1"],
        &["a"],
        vec![int("transB", 1)],
    )];
    g.nodes.extend(nodes);
    g.nodes.push(node(
        "Gemm",
        "d2",
        &["z", "W2"],
        &["y"],
        vec![int("transB", 1)],
    ));
    g
}

fn scalar(name: &str, v: f32) -> TensorProto {
    f32s(name, &[], &[v])
}

#[test]
fn activations_are_refused_or_recognised_and_replaced() {
    let cases: Vec<(&str, Graph, &str, &str)> = vec![
        (
            "erf gelu",
            with_activation(
                vec![
                    node("Div", "g/div", &["a", "sqrt2"], &["t"], vec![]),
                    node("Erf", "g/erf", &["t"], &["e"], vec![]),
                    node("Add", "g/add", &["e", "one"], &["e1"], vec![]),
                    node("Mul", "g/mul", &["a", "e1"], &["m"], vec![]),
                    node("Mul", "g/half", &["m", "half"], &["z"], vec![]),
                ],
                vec![
                    scalar("sqrt2", std::f32::consts::SQRT_2),
                    scalar("one", 1.0),
                    scalar("half", 0.5),
                ],
                13,
            ),
            "g/erf",
            "Gelu",
        ),
        (
            "silu",
            with_activation(
                vec![
                    node("Sigmoid", "s/sig", &["a"], &["s"], vec![]),
                    node("Mul", "s/mul", &["a", "s"], &["z"], vec![]),
                ],
                vec![],
                13,
            ),
            "s/sig",
            "Silu",
        ),
        (
            "sigmoid",
            with_activation(
                vec![node("Sigmoid", "sig", &["a"], &["z"], vec![])],
                vec![],
                13,
            ),
            "sig",
            "Sigmoid",
        ),
        (
            "tanh",
            with_activation(vec![node("Tanh", "th", &["a"], &["z"], vec![])], vec![], 13),
            "th",
            "Tanh",
        ),
        (
            "gelu op",
            with_activation(
                vec![node(
                    "Gelu",
                    "gelu",
                    &["a"],
                    &["z"],
                    vec![string("approximate", "tanh")],
                )],
                vec![],
                20,
            ),
            "gelu",
            "GeluTanh",
        ),
    ];
    for (tag, g, node_name, kind) in cases {
        let err = g.import(false).expect_err(tag).to_string();
        assert!(
            err.starts_with(&format!("node '{node_name}' (")),
            "{tag}: {err}"
        );
        assert!(err.contains("not a polynomial"), "{tag}: {err}");
        let m = g.import(true).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(kinds(&m), ["linear", "poly", "linear"], "{tag}");
        assert_eq!(m.replaced.len(), 1, "{tag}");
        let r = &m.replaced[0];
        assert_eq!(
            (r.node.as_str(), r.op_type.as_str(), r.layer_index),
            (node_name, kind, 1),
            "{tag}"
        );
        let Layer::Poly(p) = &m.network.arch.layers[1] else {
            panic!("{tag}: not a poly");
        };
        assert_eq!(p.coefficients, fit_activation(kind, -1.0, 1.0, 2), "{tag}");
    }
    // A function of a sigmoid that is no known activation.
    let g = with_activation(
        vec![
            node("Sigmoid", "sig", &["a"], &["s"], vec![]),
            node("Mul", "twice", &["s", "two"], &["z"], vec![]),
        ],
        vec![scalar("two", 2.0)],
        13,
    );
    let err = g.import(true).expect_err("unknown").to_string();
    assert!(
        err.contains("from node 'sig'") && err.contains("Relu, Sigmoid"),
        "{err}"
    );
}

// ---------------------------------------------------------------- errors

fn expect_error(tag: &str, g: &Graph, want: &str) {
    match g.import(true) {
        Ok(m) => panic!("{tag}: imported as {:?}", kinds(&m)),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(want), "{tag}: '{msg}' lacks '{want}'");
            assert!(!msg.contains('\n'), "{tag}: {msg}");
        }
    }
}

#[test]
fn unsupported_graphs_are_explained() {
    let base = mlp;
    let conv = cnn;

    let mut g = base();
    g.nodes[6] = node("Softmax", "soft", &["n"], &["n2"], vec![]);
    expect_error("op", &g, "unsupported ONNX node 'soft' (Softmax)");

    let mut g = base();
    g.nodes[6].domain = Some("com.microsoft".into());
    expect_error("domain", &g, "(com.microsoft::Mul)");

    let mut g = conv();
    g.nodes[0].attribute.push(int("group", 2));
    expect_error("group", &g, "node 'conv' (Conv): group:");

    let mut g = conv();
    g.nodes[0].attribute.push(ints("pads", &[0, 0, 1, 1]));
    expect_error("pads", &g, "node 'conv' (Conv): pads:");

    let mut g = conv();
    g.nodes[0].attribute.push(ints("dilations", &[2, 2]));
    expect_error("dilations", &g, "dilations:");

    let mut g = conv();
    g.nodes[0].attribute.push(string("auto_pad", "SAME_UPPER"));
    expect_error("auto_pad", &g, "auto_pad: SAME_UPPER");

    let mut g = conv();
    g.nodes[0].attribute[1] = ints("strides", &[1, 2]);
    expect_error("strides", &g, "strides:");

    let mut g = conv();
    g.inits[0] = f32s("W", &[3, 2, 3, 2], &values(6, 36, 0.5));
    g.nodes[0].attribute.remove(0);
    expect_error("kernel", &g, "non-square kernel 3x2");

    let mut g = conv();
    g.inits[0] = f32s("W", &[3, 2, 9], &values(6, 54, 0.5));
    expect_error("conv1d", &g, "weight 'W' of shape [3, 2, 9]");

    let mut g = conv();
    g.inits[0] = i64s("W", &[3, 2, 3, 3], &[1; 54]);
    expect_error(
        "int weights",
        &g,
        "tensor 'W': weights must be floating point",
    );

    let mut g = conv();
    g.inits.remove(0);
    expect_error("missing", &g, "input 'W' is neither an initializer");

    let mut g = conv();
    g.nodes[1].attribute.push(int("training_mode", 1));
    expect_error("training bn", &g, "training_mode");

    let mut g = conv();
    g.inits[5] = i64s("three", &[], &[5]);
    expect_error("pow 5", &g, "exponent 5");

    let mut g = conv();
    g.nodes[2] = node("Pow", "cube", &["b", "half"], &["b3"], vec![]);
    g.inits.push(scalar("half", 0.5));
    expect_error("sqrt", &g, "exponent 0.5");

    // x^3 * x^2 = degree 5.
    let mut g = conv();
    g.nodes[5] = node("Mul", "lin", &["s3", "b2"], &["p"], vec![]);
    g.nodes
        .insert(5, node("Mul", "sq", &["b", "b"], &["b2"], vec![]));
    expect_error("degree", &g, "degree 5");

    let mut g = conv();
    g.inits[6] = i64s("shape", &[3], &[1, 3, 1]);
    expect_error(
        "reshape",
        &g,
        "reshaping a [batch, 3, 1, 1] tensor to [1, 3, 1]",
    );

    // A skip connection: the pooled tensor added to the convolution's output.
    let mut g = conv();
    g.nodes[5] = node("Add", "skip", &["s3", "c"], &["p"], vec![]);
    expect_error("skip", &g, "tensor 'c' was computed before the last layer");

    // The output is not the last activation.
    let mut g = conv();
    g.output = "b";
    expect_error(
        "output",
        &g,
        "graph output: 'b' is not the network's last activation",
    );

    // An element-wise product with a non-scalar constant.
    let mut g = base();
    g.nodes[4] = node("Div", "div", &["s", "vec"], &["d"], vec![]);
    g.inits.push(f32s("vec", &[8], &[2.0; 8]));
    expect_error("vector", &g, "constant of shape [8] applied element-wise");

    // A second input.
    let mut g = base();
    let mut p = g.proto();
    if let Some(gr) = p.graph.as_mut() {
        gr.input.push(value_info("x2", &[0, 12]));
    }
    let err = import(&p.encode_to_vec(), &ImportOptions::default()).expect_err("inputs");
    assert_eq!(
        err.to_string(),
        "graph input: the graph has 2 inputs (x, x2); one is supported"
    );
    // Initializers listed as inputs (older exporters) are not inputs.
    let mut p = g.proto();
    if let Some(gr) = p.graph.as_mut() {
        gr.input.push(value_info("W1", &[12, 8]));
    }
    assert!(import(&p.encode_to_vec(), &ImportOptions::default()).is_ok());
    // No output.
    let mut p = g.proto();
    if let Some(gr) = p.graph.as_mut() {
        gr.output.clear();
    }
    let err = import(&p.encode_to_vec(), &ImportOptions::default()).expect_err("outputs");
    assert_eq!(err.to_string(), "graph output: the graph has no output");
    // No nodes.
    g.nodes.clear();
    assert!(matches!(g.import(false), Err(Error::EmptyGraph)));
    // Hostile sizes: an empty weight with a huge dimension, huge pads, a huge input.
    let mut g = base();
    g.inits[4] = f32s("W2", &[1 << 40, 0], &[]);
    expect_error(
        "empty",
        &g,
        "weight 'W2' of shape [1099511627776, 0] is empty",
    );
    let mut g = conv();
    g.nodes[0].attribute.push(ints("pads", &[1 << 40; 4]));
    expect_error("huge pads", &g, "pads:");
    let mut g = conv();
    g.input.1 = vec![1, 1 << 30, 1 << 30, 1 << 30];
    expect_error("huge input", &g, "too many");
    // Rank 3 input.
    let mut g = base();
    g.input.1 = vec![0, 3, 4];
    expect_error("rank", &g, "graph input: 'x': rank 3");
}

#[test]
fn nodes_out_of_order_are_sorted() {
    let mut g = mlp();
    g.nodes.reverse();
    let m = g.import(false).expect("imports");
    assert_eq!(kinds(&m), ["linear", "poly", "linear"]);
    assert_eq!(m.network, mlp().import(false).expect("imports").network);
}
