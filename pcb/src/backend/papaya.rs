//! Baseline: `papaya`, a lock-free hash table whose readers are protected
//! by `seize` (epoch-like reference counting of retired batches).

use super::ConnTable;
use crate::hash::{FlowBuildHasher, FlowHash};
use crate::table::InsertError;
use crate::tuple::{FourTuple, Key};

/// A connection table on `papaya::HashMap`, hashed with the keyed hash.
pub struct PapayaTable<T> {
    map: papaya::HashMap<Key, T, FlowBuildHasher>,
}

impl<T> PapayaTable<T> {
    pub fn new(expected: usize, hash: FlowHash) -> Self {
        PapayaTable {
            map: papaya::HashMap::with_capacity_and_hasher(expected, FlowBuildHasher(hash)),
        }
    }
}

impl<T: Send + Sync> ConnTable<T> for PapayaTable<T> {
    fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        match self.map.pin().try_insert(Key::from(tuple), value) {
            Ok(_) => Ok(()),
            Err(_) => Err(InsertError::Duplicate(*tuple)),
        }
    }
    fn remove(&self, tuple: &FourTuple) -> bool {
        self.map.pin().remove(&Key::from(tuple)).is_some()
    }
    fn lookup_with<R>(&self, tuple: &FourTuple, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.map.pin().get(&Key::from(tuple)).map(f)
    }
    #[inline]
    fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.pin().contains_key(&Key::from(tuple))
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}
