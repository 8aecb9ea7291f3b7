//! Expansion snapshots: each `tests/expand/NAME.rs` holds one `#[nexus_service]` contract; its
//! expansion, printed as formatted Rust, must equal `tests/expand/NAME.expanded.rs`.
//!
//! After a deliberate change to the generated code, rewrite the snapshots with
//! `NEXUS_BLESS=1 cargo test -p nexus-macros expand` and review the diff before committing it.

use std::path::{Path, PathBuf};

/// The expansion of the first `#[nexus_service]` trait in `source`, formatted.
fn expand_source(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("the snapshot input parses");
    let mut items = Vec::new();
    for item in file.items {
        let syn::Item::Trait(mut item_trait) = item else {
            items.push(item);
            continue;
        };
        let Some(position) = item_trait
            .attrs
            .iter()
            .position(|a| a.path().is_ident("nexus_service"))
        else {
            items.push(syn::Item::Trait(item_trait));
            continue;
        };
        let attr = item_trait.attrs.remove(position);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => proc_macro2::TokenStream::new(),
        };
        let expanded = crate::expand(args, quote::ToTokens::to_token_stream(&item_trait));
        let expanded: syn::File = syn::parse2(expanded).expect("the expansion parses as items");
        items.extend(expanded.items);
    }
    prettyplease::unparse(&syn::File {
        shebang: None,
        frontmatter: None,
        attrs: file.attrs,
        items,
    })
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/expand exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn expansions_match_their_snapshots() {
    let bless = std::env::var_os("NEXUS_BLESS").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 3,
        "expected the snapshot cases, found {cases:?}"
    );
    let mut stale = Vec::new();
    for case in cases {
        let source = std::fs::read_to_string(&case).expect("the case is readable");
        let actual = expand_source(&source);
        let snapshot = case.with_extension("expanded.rs");
        if bless {
            std::fs::write(&snapshot, &actual).expect("the snapshot is writable");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != actual {
            stale.push(format!(
                "{}: the expansion differs from {}:\n{actual}",
                case.display(),
                snapshot.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(after a deliberate change: NEXUS_BLESS=1 cargo test -p nexus-macros expand)",
        stale.join("\n\n")
    );
}
