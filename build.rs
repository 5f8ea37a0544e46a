//! Compiles the protobuf definitions in `proto/` into one descriptor set (with their imports),
//! which the server embeds to speak gRPC, gRPC-web and Connect proto, and to answer reflection.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read proto/").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    proto_files(root, &mut files);
    let relative: Vec<PathBuf> = files.iter().map(|f| f.strip_prefix(root).unwrap().to_path_buf()).collect();
    let mut compiler = protox::Compiler::new([root]).expect("protobuf compiler");
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(&relative).unwrap_or_else(|e| panic!("compiling proto/: {e}"));
    let set = prost::Message::encode_to_vec(&compiler.file_descriptor_set());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("actionsd.fds");
    std::fs::write(out, set).expect("write the descriptor set");
}
