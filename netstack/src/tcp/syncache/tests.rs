use super::entry::{Entry, TupleKey};

#[test]
fn an_entry_and_its_key_fit_in_a_cache_line() {
    assert!(core::mem::size_of::<(TupleKey, Entry)>() <= 64);
}
