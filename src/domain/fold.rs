//! Case-insensitive matching: NFC, then Unicode simple case folding (the implementation and its
//! table live with the stored shapes in `entity::fold`, because a migration re-folds stored names).

pub use entity::fold::{fold, fold_char};
