//! No input panics any checker, and the same input always gives the same findings.

use fa_model::Snippet;
use fa_validate::{check_document, validate_snippet, LANGS};
use proptest::prelude::*;

/// Text built from the pieces the checkers react to, so random input reaches deep paths.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("docker run ".to_string()),
        Just("kubectl get ".to_string()),
        Just("aws iam ".to_string()),
        Just("gcloud compute ".to_string()),
        Just("gh api ".to_string()),
        Just("sudo ".to_string()),
        Just("find / -exec ".to_string()),
        Just("ip ".to_string()),
        Just("--security-opt ".to_string()),
        Just("-p ".to_string()),
        Just("-it".to_string()),
        Just("--".to_string()),
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("`".to_string()),
        Just("```".to_string()),
        Just("$(".to_string()),
        Just(")".to_string()),
        Just("(".to_string()),
        Just("<<EOF\n".to_string()),
        Just("\\\n".to_string()),
        Just("|".to_string()),
        Just("&&".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("- rule: ".to_string()),
        Just("  condition: ".to_string()),
        Just("  exceptions:\n".to_string()),
        Just("apiVersion: v1\nkind: Pod\n".to_string()),
        Just("spec:\n  containers:\n".to_string()),
        Just("proc.aname[".to_string()),
        Just(" in (".to_string()),
        Just("%".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just("\t".to_string()),
        Just("\u{3000}".to_string()),
        Just("é".to_string()),
        Just("  ".to_string()),
        "[a-zA-Z0-9_./:-]{0,8}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_snippet_panics_any_checker(code in tricky_text(), lang in prop::sample::select(LANGS.to_vec())) {
        let snippet = Snippet { lang: lang.to_string(), code };
        let first = validate_snippet(&snippet);
        let second = validate_snippet(&snippet);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn no_document_panics(text in tricky_text()) {
        let first = check_document(&text);
        prop_assert_eq!(first, check_document(&text));
    }

    #[test]
    fn arbitrary_unicode_is_fine(text in any::<String>(), lang in prop::sample::select(LANGS.to_vec())) {
        let _ = validate_snippet(&Snippet { lang: lang.to_string(), code: text.clone() });
        let _ = check_document(&text);
    }
}
