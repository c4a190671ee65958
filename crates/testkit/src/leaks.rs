//! The checks that no secret reached an output: the secrets a test knows, and the tokens it cannot see (the embedded
//! emulator's, `NN_` and 126 alphanumerics, show as a long run of token characters).

/// Panics, giving only the secret's length, if `haystack` holds any of `secrets`.
pub fn assert_clean(haystack: &str, secrets: &[String]) {
    assert!(!secrets.is_empty());
    for secret in secrets {
        assert!(!haystack.contains(secret.as_str()), "a secret leaked ({} chars) in:\n{haystack}", secret.len());
    }
}

/// Finds a run of 100+ token characters (the emulator's tokens are `NN_` + 126 alphanumerics).
pub fn long_token_like_run(text: &str) -> Option<String> {
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            run.push(c);
            if run.len() >= 100 {
                return Some(run);
            }
        } else {
            run.clear();
        }
    }
    None
}
