//! Compiles the `.proto` files under `proto/` with protox, so no `protoc` is needed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "invoicer/types/v1/types.proto",
    "invoicer/invoice_query/v1/invoice_query.proto",
    "invoicer/pdf_render/v1/pdf_render.proto",
    "invoicer/mail_delivery/v1/mail_delivery.proto",
    "invoicer/audit_log/v1/audit_log.proto",
    "invoicer/orchestrator/v1/orchestrator.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: `env!` would bake in the checkout that first compiled this script, and
    // clones sharing a target folder reuse that binary.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    // File by file: with only the folder listed, editing a .proto did not rerun this script
    // (seen with cargo 1.95). Relative paths resolve against this package in each checkout, so
    // clones that share one target folder do not take each other's generated code as fresh.
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=../../proto/{proto}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let descriptors = protox::compile(PROTOS, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("invoicer_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
