//! Compiles `proto/fsfeed/v1/*.proto` with prost. The descriptors come from
//! `protox` (a protobuf compiler in Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: the target directory is shared by
    // clones at other paths, and a build script compiled for one of them
    // must not look for the .proto files of another.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let files = [
        root.join("fsfeed/v1/fsfeed.proto"),
        root.join("hadoop/inotify.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    config.compile_fds(fds)?;
    Ok(())
}
