//! Baseline: one `std::sync::RwLock<HashMap>`; every reader takes the one
//! read lock (a read-modify-write on the same line for all readers).

use super::ConnTable;
use crate::hash::{FlowBuildHasher, FlowHash};
use crate::table::InsertError;
use crate::tuple::{FourTuple, Key};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{PoisonError, RwLock};

/// A connection table on `RwLock<HashMap>`, hashed with the keyed hash.
pub struct RwLockTable<T> {
    map: RwLock<HashMap<Key, T, FlowBuildHasher>>,
}

impl<T> RwLockTable<T> {
    pub fn new(expected: usize, hash: FlowHash) -> Self {
        RwLockTable {
            map: RwLock::new(HashMap::with_capacity_and_hasher(
                expected,
                FlowBuildHasher(hash),
            )),
        }
    }
}

impl<T: Send + Sync> ConnTable<T> for RwLockTable<T> {
    fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        match map.entry(Key::from(tuple)) {
            Entry::Occupied(_) => Err(InsertError::Duplicate(*tuple)),
            Entry::Vacant(v) => {
                v.insert(value);
                Ok(())
            }
        }
    }
    fn remove(&self, tuple: &FourTuple) -> bool {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(&Key::from(tuple)).is_some()
    }
    fn lookup_with<R>(&self, tuple: &FourTuple, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(&Key::from(tuple)).map(f)
    }
    #[inline]
    fn contains(&self, tuple: &FourTuple) -> bool {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.contains_key(&Key::from(tuple))
    }
    fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
