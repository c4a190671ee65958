//! What the deployed Lambda binary may contain. Moved from `lambda_binary.rs`: the marker's control is now this test
//! binary itself (it links the emulator, which the suites start), where it was `wxpm`'s.

/// A string only the emulator's control endpoint uses.
const EMULATOR_MARKER: &[u8] = b"/__emulator/";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_lambda_binary_holds_no_emulator_code() {
    let lambda = std::fs::read(env!("CARGO_BIN_EXE_wx-plugin-manager")).unwrap();
    let with_emulator = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(contains(&with_emulator, EMULATOR_MARKER), "the marker must be findable, or this test proves nothing");
    assert!(!contains(&lambda, EMULATOR_MARKER), "the Lambda binary links the emulator");
}
