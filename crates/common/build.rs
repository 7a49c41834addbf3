//! Compiles the wire messages and services with a vendored protoc: no system install needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure().compile_protos(&["proto/tessera.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/tessera.proto");
    Ok(())
}
