//! The runtime's shape: no module of keras-runtime imports, directly or through others, a module
//! that imports it back (`scripts/module_graph.py` resolves every import to the module that
//! defines the item, re-exports followed). The op descriptors (`backend::ops`) stay a leaf.

use std::process::Command;

#[test]
fn the_runtime_has_no_import_cycles() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = match Command::new("python3").arg(format!("{root}/scripts/module_graph.py")).arg(format!("{root}/keras-runtime/src")).output()
    {
        Ok(out) => out,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("python3 is needed for this test under CI: {e}"),
        Err(e) => {
            eprintln!("skipped: python3 not found ({e})");
            return;
        }
    };
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import cycles in keras-runtime:\n{listing}{}", String::from_utf8_lossy(&out.stderr));
    assert!(listing.contains("no import cycles"), "{listing}");
    let ops = listing.lines().find(|l| l.starts_with("backend::ops ->")).expect("backend::ops is listed");
    assert_eq!(ops.trim_end(), "backend::ops ->", "the op descriptors import nothing of the crate");
}
