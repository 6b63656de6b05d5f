//! Misuses of `#[client]` fail to compile with a message that says what to fix.

#[test]
fn misuse_of_client_does_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
