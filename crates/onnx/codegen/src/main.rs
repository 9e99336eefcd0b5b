// Generates onnx.rs from onnx.proto with prost-build; driven by regen.sh.
// Usage: onnx-proto-gen <dir containing onnx.proto> <out dir>   (needs protoc on PATH or $PROTOC)
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (inc, out) = (&args[1], &args[2]);
    std::fs::create_dir_all(out).unwrap();
    prost_build::Config::new()
        .out_dir(out)
        .compile_protos(&[format!("{inc}/onnx.proto")], &[inc])
        .expect("prost-build failed");
}
