//! Baseline: `dashmap`, a sharded `RwLock<HashMap>`; readers take their
//! shard's read lock (an atomic read-modify-write on a shared line).

use super::ConnTable;
use crate::hash::{FlowBuildHasher, FlowHash};
use crate::table::InsertError;
use crate::tuple::{FourTuple, Key};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

/// A connection table on `DashMap`, hashed with the table's keyed hash.
pub struct DashMapTable<T> {
    map: DashMap<Key, T, FlowBuildHasher>,
}

impl<T> DashMapTable<T> {
    pub fn new(expected: usize, hash: FlowHash) -> Self {
        DashMapTable {
            map: DashMap::with_capacity_and_hasher(expected, FlowBuildHasher(hash)),
        }
    }
}

impl<T: Send + Sync> ConnTable<T> for DashMapTable<T> {
    fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        match self.map.entry(Key::from(tuple)) {
            Entry::Occupied(_) => Err(InsertError::Duplicate(*tuple)),
            Entry::Vacant(v) => {
                v.insert(value);
                Ok(())
            }
        }
    }
    fn remove(&self, tuple: &FourTuple) -> bool {
        self.map.remove(&Key::from(tuple)).is_some()
    }
    fn lookup_with<R>(&self, tuple: &FourTuple, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.map.get(&Key::from(tuple)).map(|r| f(&r))
    }
    #[inline]
    fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(&Key::from(tuple))
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}
