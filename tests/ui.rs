//! Compile errors of `sequential!`, pinned with their exact messages (`tests/ui/*.stderr`).

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
